//! The engine's GGUF header reader on any bytes, then the hyperparameter and tokenizer checks of
//! whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = engine::gguf::read(&mut std::io::Cursor::new(data)) {
        let _ = engine::hparams::Hparams::from_gguf(&g.content);
        let _ = engine::tokenizer::Tokenizer::from_gguf(&g.content.metadata);
    }
});
