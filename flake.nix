{
  description = "Confidential LLM inference on iExec TDX: reproducible OCI image and independent verifier";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      models = import ./models.nix;
      model = models.primary;
      version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).workspace.package.version;

      # Every file in the image gets this mtime; Nix uses 1 for the store too.
      sourceDateEpoch = "1";

      modelFile = pkgs.fetchurl {
        inherit (model) url sha256;
        name = model.file;
      };

      # One workspace, one lock file; each package builds the binaries it names.
      crate =
        args:
        pkgs.rustPlatform.buildRustPackage (
          {
            inherit version;
            src = pkgs.lib.cleanSource ./.;
            cargoLock.lockFile = ./Cargo.lock;
            doCheck = false;
          }
          // args
        );

      # Static, so the image holds the binary and the model and nothing else. nixpkgs builds
      # with an explicit --target, so RUSTFLAGS reach the app and not build scripts.
      app = crate {
        pname = "iexec-llm";
        cargoBuildFlags = [ "-p" "app" "--bin" "iexec-llm" ];
        buildInputs = [ pkgs.glibc.static ];
        RUSTFLAGS = "-C target-feature=+crt-static";
        IEXEC_LLM_MODEL_PATH = "/models/${model.file}";
        IEXEC_LLM_MODEL_SHA256 = model.sha256;
      };

      verifier = crate {
        pname = "verifier";
        cargoBuildFlags = [ "-p" "verifier" ];
      };

      ociImage = crate {
        pname = "oci-image";
        cargoBuildFlags = [ "-p" "oci-image" ];
      };

      image = pkgs.runCommand "iexec-llm-image-${version}"
        {
          nativeBuildInputs = [ ociImage ];
          SOURCE_DATE_EPOCH = sourceDateEpoch;
        } ''
        oci-image build --out $out --reference ${version} --app-version ${version} \
          --source-date-epoch ${sourceDateEpoch} \
          --binary ${app}/bin/iexec-llm --binary-path /app/iexec-llm \
          --model ${modelFile}=${model.file} --env PATH=/app
      '';

      push = pkgs.writeShellScript "push-image" ''
        set -eu
        [ $# -eq 1 ] || { echo "usage: nix run .#push -- docker://REGISTRY/NAME:TAG" >&2; exit 2; }
        # The layout's layers are already compressed: keep them, so the registry serves the
        # manifest digest computed at build time (measurement.json).
        ${pkgs.skopeo}/bin/skopeo copy --preserve-digests oci:${image}/oci:${version} "$1"
      '';

      iexecJson = pkgs.writeShellScript "fill-iexec-json" ''
        set -eu
        [ $# -ge 3 ] || { echo "usage: nix run .#iexec-json -- REGISTRY/NAME:TAG --owner 0xYOUR_WALLET" >&2; exit 2; }
        image="$1"; shift
        ${ociImage}/bin/oci-image iexec-json --measurement ${image}/measurement.json \
          --image "$image" "$@"
      '';
      # For the iapp CLI: a one-line Dockerfile FROM the pushed image by digest, and
      # iapp.config.json (iapp deploy rebuilds it: another manifest digest; see README).
      iappFiles = pkgs.writeShellScript "iapp-files" ''
        set -eu
        [ $# -ge 1 ] || { echo "usage: nix run .#iapp-files -- REGISTRY/NAME:TAG [--project NAME] [--out DIR]" >&2; exit 2; }
        image="$1"; shift
        ${ociImage}/bin/oci-image iapp --measurement ${image}/measurement.json \
          --image "$image" "$@"
      '';
    in
    {
      packages.${system} = {
        inherit app verifier image;
        oci-image = ociImage;
        model = modelFile;
        default = image;
      };

      apps.${system} = {
        verifier = {
          type = "app";
          program = "${verifier}/bin/verifier";
        };
        push = {
          type = "app";
          program = "${push}";
        };
        iexec-json = {
          type = "app";
          program = "${iexecJson}";
        };
        iapp-files = {
          type = "app";
          program = "${iappFiles}";
        };
        default = self.apps.${system}.verifier;
      };

      # The unit tests; the integration tests need the small model from PyPI and run in
      # scripts/test.sh.
      checks.${system}.tests = crate {
        pname = "workspace-tests";
        doCheck = true;
        cargoTestFlags = [ "--workspace" "--lib" ];
      };

      devShells.${system}.default = pkgs.mkShell {
        packages = [
          pkgs.cargo
          pkgs.rustc
          pkgs.clippy
          pkgs.rustfmt
          pkgs.skopeo
          pkgs.umoci
          pkgs.runc
          pkgs.python3
          pkgs.cmake
        ];
      };
    };
}
