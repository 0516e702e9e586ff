//! The app's GGUF header reader on any bytes, then the hyperparameter and tokenizer checks of
//! whatever parses.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = app::gguf::read(&mut std::io::Cursor::new(data)) {
        let _ = app::model::Hparams::from_gguf(&g.content);
        let _ = app::tokenizer::Tokenizer::from_gguf(&g.content.metadata);
    }
});
