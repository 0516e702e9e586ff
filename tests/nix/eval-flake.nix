# Evaluates flake.nix against a stub nixpkgs (no store, no network) and checks that it
# exposes the promised outputs, wired to the pins of models.nix. Run by scripts/check-nix.sh:
#   nix-instantiate --eval --strict --json tests/nix/eval-flake.nix
let
  root = ../..;
  flake = import (root + "/flake.nix");
  models = import (root + "/models.nix");
  lock = builtins.fromJSON (builtins.readFile (root + "/flake.lock"));

  # A derivation stand-in: records its arguments, has an output path.
  drv = name: args: args // {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  stub = {
    lib.cleanSource = p: p;
    fetchurl = args: drv args.name args;
    rustPlatform.buildRustPackage = args: drv args.pname args;
    runCommand = name: env: script: drv name (env // { inherit script; });
    writeShellScript = name: text: drv name { inherit text; };
    mkShell = args: drv "shell" args;
    glibc.static = drv "glibc-static" { };
  } // builtins.listToAttrs (map (n: { name = n; value = drv n { }; }) [
    "cargo"
    "rustc"
    "clippy"
    "rustfmt"
    "skopeo"
    "umoci"
    "runc"
    "python3"
    "cmake"
  ]);

  self = outputs // { outPath = root; };
  outputs = flake.outputs { inherit self; nixpkgs.legacyPackages.x86_64-linux = stub; };
  pkgs = outputs.packages.x86_64-linux;
  m = models.primary;
  has = s: sub: builtins.match ".*${sub}.*" s != null;
in
{
  packages = builtins.attrNames pkgs;
  apps = builtins.attrNames outputs.apps.x86_64-linux;
  checks = builtins.attrNames outputs.checks.x86_64-linux;
  devShell = outputs.devShells.x86_64-linux ? default;
  default_is_image = pkgs.default.name == pkgs.image.name;
  nixpkgs_rev = lock.nodes.nixpkgs.locked.rev;
  nixpkgs_narHash = lock.nodes.nixpkgs.locked.narHash;
  model_url = pkgs.model.url;
  model_url_is_pinned_resolve = pkgs.model.url == "https://huggingface.co/${m.repo}/resolve/${m.revision}/${m.file}";
  model_sha256 = pkgs.model.sha256;
  app_pinned_sha256 = pkgs.app.IEXEC_LLM_MODEL_SHA256;
  app_pinned_path = pkgs.app.IEXEC_LLM_MODEL_PATH;
  app_rustflags = pkgs.app.RUSTFLAGS;
  app_cargo_flags = pkgs.app.cargoBuildFlags;
  image_script_places_model = has pkgs.image.script "--model ${pkgs.model.outPath}=${m.file}";
  image_script_entrypoint = has pkgs.image.script "--binary-path /app/iexec-llm";
  image_source_date_epoch = pkgs.image.SOURCE_DATE_EPOCH;
  push_program = outputs.apps.x86_64-linux.push.program;
  version = (builtins.fromTOML (builtins.readFile (root + "/Cargo.toml"))).workspace.package.version;
}
