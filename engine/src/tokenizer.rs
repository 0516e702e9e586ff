//! Tokenizer built from a GGUF file's own tokenizer metadata, or from a `tokenizer.json`.
//!
//! GGUF keys (ggml `docs/gguf.md`, "Tokenizer"): `tokenizer.ggml.model` (only `gpt2`, byte-level
//! BPE, is supported), `.tokens`, `.merges`, `.token_type`, `.pre`, `.bos_token_id`,
//! `.eos_token_id`, `.eot_token_id`, `.add_bos_token`. The pre-tokenizer regular expressions
//! are the ones llama.cpp uses for each `pre` name (`src/llama-vocab.cpp`), so token ids match
//! llama.cpp's; `tests/` checks that against ids recorded from llama.cpp itself.
//!
//! Control and user-defined tokens (`token_type` 3 and 4) are registered as *special* added
//! tokens. [`Tokenizer::encode_trusted`] turns their text into their ids (for text the app itself
//! produced: the rendered chat template); [`Tokenizer::encode_plain`] never does, so text from
//! a user cannot forge a turn marker such as `<|im_end|>` or `</think>`.

use crate::Error;
use candle_core::quantized::gguf_file::Value;
use serde_json::json;
use std::collections::HashMap;

/// `llama_token_type` values (llama.cpp `include/llama.h`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// GPT-2's pre-tokenizer, llama.cpp's default.
const RE_GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Qwen2 and DeepSeek-R1-Distill-Qwen.
const RE_QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3 (`llama-bpe`): like Qwen2 but digits in runs of up to three.
const RE_LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// SmolLM: every digit on its own, then GPT-2's expression.
const RE_DIGIT: &str = r"\p{N}";

/// A tokenizer and the ids of the tokens generation cares about.
pub struct Tokenizer {
    /// Parses special-token text into special tokens.
    trusted: tokenizers::Tokenizer,
    /// Same vocabulary, but special-token text is tokenized as ordinary text.
    plain: tokenizers::Tokenizer,
    /// Beginning-of-sequence token, if the model has one.
    pub bos: Option<u32>,
    /// Whether raw (untemplated) prompts start with `bos`.
    pub add_bos: bool,
    /// Tokens that end generation (EOS, EOT, EOM).
    pub end_of_generation: Vec<u32>,
}

impl Tokenizer {
    /// Builds the tokenizer described by a GGUF file's metadata.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] for a tokenizer model other than `gpt2`, an unknown pre-tokenizer
    /// name, or missing or inconsistent token lists.
    pub fn from_gguf(md: &HashMap<String, Value>) -> Result<Self, Error> {
        let model = md_str(md, "tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(tok(format!(
                "tokenizer.ggml.model is {model:?}; only \"gpt2\" (byte-level BPE) is supported"
            )));
        }
        let pre = match md.get("tokenizer.ggml.pre") {
            Some(v) => v
                .to_string()
                .map_err(|_| tok("tokenizer.ggml.pre is not a string"))?
                .as_str(),
            None => "default",
        };
        let (regexes, ignore_merges): (&[&str], bool) = match pre {
            "qwen2" | "deepseek-r1-qwen" => (&[RE_QWEN2], false),
            "llama3" | "llama-v3" | "llama-bpe" => (&[RE_LLAMA3], true),
            "smollm" => (&[RE_DIGIT, RE_GPT2], false),
            "default" | "gpt-2" | "gpt2" => (&[RE_GPT2], false),
            other => return Err(tok(format!("unsupported pre-tokenizer {other:?}"))),
        };

        let (tk, n_vocab) = bpe(md, regexes, ignore_merges)?;
        let id = |key: &str| -> Result<Option<u32>, Error> {
            match md.get(key) {
                None => Ok(None),
                Some(v) => {
                    let id = v.to_u32().map_err(|_| tok(format!("{key} is not a u32")))?;
                    if id as usize >= n_vocab {
                        return Err(tok(format!("{key} = {id} is outside the vocabulary")));
                    }
                    Ok(Some(id))
                }
            }
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let end_of_generation: Vec<u32> = [
            id("tokenizer.ggml.eos_token_id")?,
            id("tokenizer.ggml.eot_token_id")?,
            id("tokenizer.ggml.eom_token_id")?,
        ]
        .into_iter()
        .flatten()
        .collect();
        if end_of_generation.is_empty() {
            return Err(tok("the model declares no end-of-sequence token"));
        }
        // llama.cpp adds BOS by default only for the Llama 3 pre-tokenizer; the GGUF can say
        // otherwise.
        let add_bos = match md.get("tokenizer.ggml.add_bos_token") {
            Some(v) => v
                .to_bool()
                .map_err(|_| tok("add_bos_token is not a bool"))?,
            None => ignore_merges,
        };
        Self::from_parts(tk, bos, add_bos, end_of_generation)
    }

    /// Loads a Hugging Face `tokenizer.json`, keeping the GGUF's BOS, end-of-generation ids and
    /// add-BOS rule. Every added token of the file is treated as special, so that user text
    /// can never produce one (`tokenizer.json` files mark some, like `<think>`, as not special).
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the file cannot be read or parsed.
    pub fn from_file(path: &std::path::Path, from_gguf: &Tokenizer) -> Result<Self, Error> {
        let mut tk = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| tok(format!("cannot load {}: {e}", path.display())))?;
        let added: Vec<tokenizers::AddedToken> = tk
            .get_added_tokens_decoder()
            .into_values()
            .map(|t| tokenizers::AddedToken { special: true, ..t })
            .collect();
        tk.add_special_tokens(&added);
        Self::from_parts(
            tk,
            from_gguf.bos,
            from_gguf.add_bos,
            from_gguf.end_of_generation.clone(),
        )
    }

    fn from_parts(
        trusted: tokenizers::Tokenizer,
        bos: Option<u32>,
        add_bos: bool,
        end_of_generation: Vec<u32>,
    ) -> Result<Self, Error> {
        let mut plain = trusted.clone();
        plain.set_encode_special_tokens(true);
        Ok(Self {
            trusted,
            plain,
            bos,
            add_bos,
            end_of_generation,
        })
    }

    /// Writes the tokenizer as a Hugging Face `tokenizer.json`.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the file cannot be written.
    pub fn save(&self, path: &std::path::Path) -> Result<(), Error> {
        self.trusted
            .save(path, true)
            .map_err(|e| tok(format!("cannot write {}: {e}", path.display())))
    }

    /// Number of token ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.trusted.get_vocab_size(true)
    }

    /// Tokenizes text the app produced itself: special-token text becomes special tokens.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    pub fn encode_trusted(&self, text: &str) -> Result<Vec<u32>, Error> {
        encode(&self.trusted, text)
    }

    /// Tokenizes untrusted text: special-token text is tokenized as ordinary characters.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if the tokenizer fails.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, Error> {
        encode(&self.plain, text)
    }

    /// Decodes ids to text, special tokens included as their text.
    ///
    /// # Errors
    /// [`Error::Tokenizer`] if an id is outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        self.trusted
            .decode(ids, false)
            .map_err(|e| tok(format!("decode failed: {e}")))
    }

    /// The id of a token whose text is exactly `text`, if any.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.trusted.token_to_id(text)
    }
}

fn encode(tk: &tokenizers::Tokenizer, text: &str) -> Result<Vec<u32>, Error> {
    tk.encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| tok(format!("encode failed: {e}")))
}

fn tok(msg: impl Into<String>) -> Error {
    Error::Tokenizer(msg.into())
}

fn md_str<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a str, Error> {
    md.get(key)
        .ok_or_else(|| tok(format!("missing metadata key {key}")))?
        .to_string()
        .map(String::as_str)
        .map_err(|_| tok(format!("{key} is not a string")))
}

fn md_array<'a>(md: &'a HashMap<String, Value>, key: &str) -> Result<&'a Vec<Value>, Error> {
    md.get(key)
        .ok_or_else(|| tok(format!("missing metadata key {key}")))?
        .to_vec()
        .map_err(|_| tok(format!("{key} is not an array")))
}

/// The byte-level BPE tokenizer the metadata describes (tokens, merges, token types; control
/// and user-defined tokens as added special tokens), and the vocabulary size.
fn bpe(
    md: &HashMap<String, Value>,
    regexes: &[&str],
    ignore_merges: bool,
) -> Result<(tokenizers::Tokenizer, usize), Error> {
    let tokens = md_array(md, "tokenizer.ggml.tokens")?;
    let n_vocab = tokens.len();
    let mut vocab = serde_json::Map::with_capacity(n_vocab);
    for (id, t) in tokens.iter().enumerate() {
        let t = t.to_string().map_err(|_| tok("a token is not a string"))?;
        // Duplicate token texts exist in some vocabularies; the first id wins, as in llama.cpp.
        vocab.entry(t.clone()).or_insert(json!(id));
    }
    let merges = md_array(md, "tokenizer.ggml.merges")?
        .iter()
        .map(|m| {
            let m = m.to_string().map_err(|_| tok("a merge is not a string"))?;
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| tok(format!("merge {m:?} is not two tokens")))?;
            Ok(json!([a, b]))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let types = match md.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|_| tok("tokenizer.ggml.token_type is not an array"))?
            .iter()
            .map(|t| t.to_i32().map_err(|_| tok("a token type is not an i32")))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![1; n_vocab],
    };
    if types.len() != n_vocab {
        return Err(tok(format!(
            "{} token types for {n_vocab} tokens",
            types.len()
        )));
    }
    let added: Vec<_> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(**t, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        .filter_map(|(id, _)| {
            let content = tokens.get(id)?.to_string().ok()?;
            Some(json!({
                "id": id, "content": content, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true,
            }))
        })
        .collect();

    let mut pre_tokenizers: Vec<_> = regexes
        .iter()
        .map(|re| {
            json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated",
                   "invert": false})
        })
        .collect();
    pre_tokenizers.push(json!({"type": "ByteLevel", "add_prefix_space": false,
                               "trim_offsets": false, "use_regex": false}));
    let spec = json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre_tokenizers},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false,
                    "use_regex": false},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
                  "vocab": vocab, "merges": merges},
    });
    let tk = tokenizers::Tokenizer::from_bytes(spec.to_string())
        .map_err(|e| tok(format!("cannot build the BPE tokenizer: {e}")))?;

    Ok((tk, n_vocab))
}
