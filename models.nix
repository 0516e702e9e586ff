# The pinned model files: the single source of truth. The flake fetches each one as a
# fixed-output derivation from its Hugging Face resolve/<revision>/ URL, places it under
# /models in the image, and compiles the primary model's path and sha256 into the app as the
# only file it accepts (app/src/lib.rs: IEXEC_LLM_MODEL_PATH, IEXEC_LLM_MODEL_SHA256).
rec {
  primary = deepseek-r1-distill-qwen-1_5b-q4_k_m;

  deepseek-r1-distill-qwen-1_5b-q4_k_m = rec {
    repo = "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF";
    revision = "9cc28b17e86fa2415fcb070f8ee5ec27c965aa61";
    file = "DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf";
    url = "https://huggingface.co/${repo}/resolve/${revision}/${file}";
    size = 1117320800;
    sha256 = "1741e5b2d062b07acf048bf0d2c514dadf2a48f94e2b4aa0cfe069af3838ee2f";
  };
}
