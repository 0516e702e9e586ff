//! Bounded reader for GGUF model files (header, metadata and tensor directory).
//!
//! Format: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md> (versions 2 and 3,
//! little-endian). Every length read from the file is checked against the bytes that remain
//! before anything is allocated, every tensor must lie inside the file, and sizes are computed
//! with checked arithmetic, so a truncated or hostile file gives an [`Error`] and never a panic
//! or an out-of-memory. The result is candle's own [`gguf_file::Content`], so the model code can
//! load tensors from it.

use crate::Error;
use candle_core::quantized::gguf_file::{self, Value, VersionedMagic};
use candle_core::quantized::GgmlDType;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// `GGUF` in little-endian.
const GGUF_MAGIC: u32 = 0x4655_4747;
/// Default alignment of the tensor data section (GGUF spec, `general.alignment`).
const DEFAULT_ALIGNMENT: u64 = 32;
/// Largest tensor rank GGML supports.
const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are refused (real files use depth 1).
const MAX_ARRAY_DEPTH: u32 = 2;
/// Largest single tensor we accept: 16 GiB. Anything larger is not a model this app can run.
const MAX_TENSOR_BYTES: u64 = 16 << 30;
/// Most metadata values (array elements counted one by one). Each takes about 32 bytes in
/// memory whatever its size in the file (a one-byte element too), so the count is bounded
/// before the memory budget can be checked: 4 Mi values, about 128 MiB. A real model has
/// about 460 Ki (DeepSeek-R1's 152 Ki tokens, 151 Ki merges, 152 Ki token types).
pub const MAX_METADATA_VALUES: u64 = 4 << 20;
/// Most bytes of strings in the header (keys, values, tensor names): 256 MiB; a real model
/// has a few MiB.
pub const MAX_STRING_BYTES: u64 = 256 << 20;

/// A parsed GGUF header: candle's content plus the file size it was checked against.
#[derive(Debug)]
pub struct Gguf {
    /// Metadata and tensor directory, in candle's representation.
    pub content: gguf_file::Content,
    /// Size of the file in bytes.
    pub file_size: u64,
}

/// Reads and checks the header, metadata and tensor directory of a GGUF file.
///
/// # Errors
/// [`Error::Gguf`] naming the first problem: bad magic or version, a length past the end of the
/// file, an unknown value or tensor type, a tensor whose bytes do not fit in the file.
pub fn read<R: Read + Seek>(reader: &mut R) -> Result<Gguf, Error> {
    let file_size = reader.seek(SeekFrom::End(0)).map_err(io_err)?;
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut r = Bounded {
        inner: reader,
        pos: 0,
        len: file_size,
        values: 0,
        string_bytes: 0,
    };
    let (version, tensor_count, metadata) = header(&mut r)?;
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(v) => {
            return Err(gguf(format!(
                "general.alignment must be a power of two, got {v:?}"
            )))
        }
    };

    // Steps 3 and 4: the tensor directory, every tensor inside the file.
    let (tensor_infos, data_start) = tensor_directory(&mut r, tensor_count, alignment, file_size)?;
    Ok(Gguf {
        content: gguf_file::Content {
            magic: version,
            metadata,
            tensor_infos,
            tensor_data_offset: data_start,
        },
        file_size,
    })
}

/// Reads only the header and metadata of a GGUF file: enough for its tokenizer and chat
/// template, also from a file cut short after them (a model's first part, as published).
///
/// # Errors
/// As [`read`], for the header and metadata.
pub fn read_metadata<R: Read + Seek>(reader: &mut R) -> Result<HashMap<String, Value>, Error> {
    let file_size = reader.seek(SeekFrom::End(0)).map_err(io_err)?;
    reader.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut r = Bounded {
        inner: reader,
        pos: 0,
        len: file_size,
        values: 0,
        string_bytes: 0,
    };
    Ok(header(&mut r)?.2)
}

/// Steps 1 and 2 of [`read`]: magic, version, counts, metadata.
fn header<R: Read>(
    r: &mut Bounded<'_, R>,
) -> Result<(VersionedMagic, u64, HashMap<String, Value>), Error> {
    // Step 1: magic and version.
    let magic = r.u32()?;
    if magic != GGUF_MAGIC {
        return Err(gguf(format!("not a GGUF file (magic 0x{magic:08x})")));
    }
    let version = match r.u32()? {
        2 => VersionedMagic::GgufV2,
        3 => VersionedMagic::GgufV3,
        v => {
            return Err(gguf(format!(
                "unsupported GGUF version {v} (2 and 3 are supported)"
            )))
        }
    };
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    // Each metadata entry takes at least 8 + 4 + 1 bytes and each tensor info 8 + 4 + 4 + 8.
    r.need(
        kv_count
            .saturating_mul(13)
            .saturating_add(tensor_count.saturating_mul(24)),
    )?;

    // Step 2: metadata.
    let mut metadata = HashMap::new();
    for _ in 0..kv_count {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(ty, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(gguf(format!("metadata key {key:?} appears twice")));
        }
    }
    Ok((version, tensor_count, metadata))
}

/// Steps 3 and 4 of [`read`]: the tensor directory, then every tensor's bytes checked to lie
/// inside the file. Returns the tensors and where their data starts.
fn tensor_directory<R: Read>(
    r: &mut Bounded<'_, R>,
    tensor_count: u64,
    alignment: u64,
    file_size: u64,
) -> Result<(HashMap<String, gguf_file::TensorInfo>, u64), Error> {
    let mut infos = Vec::new();
    for _ in 0..tensor_count {
        let name = r.string()?;
        let n_dims = r.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(gguf(format!(
                "tensor {name:?} has {n_dims} dimensions (1 to 4 allowed)"
            )));
        }
        let mut dims = Vec::new();
        for _ in 0..n_dims {
            let d = r.u64()?;
            let d = usize::try_from(d)
                .ok()
                .filter(|d| *d > 0)
                .ok_or_else(|| gguf(format!("tensor {name:?} has dimension {d}")))?;
            dims.push(d);
        }
        // GGUF lists the fastest-varying dimension first; candle wants it last.
        dims.reverse();
        let ty = r.u32()?;
        let dtype = ggml_dtype(ty)
            .ok_or_else(|| gguf(format!("tensor {name:?} has unsupported tensor type {ty}")))?;
        let offset = r.u64()?;
        infos.push((name, dims, dtype, offset));
    }

    // Step 4: every tensor's bytes must lie inside the file.
    let data_start = r.pos.div_ceil(alignment).saturating_mul(alignment);
    let mut tensor_infos = HashMap::new();
    for (name, dims, dtype, offset) in infos {
        let bytes = tensor_bytes(&dims, dtype)
            .ok_or_else(|| gguf(format!("tensor {name:?} has an impossible shape {dims:?}")))?;
        if bytes > MAX_TENSOR_BYTES {
            return Err(gguf(format!("tensor {name:?} would take {bytes} bytes")));
        }
        if offset % alignment != 0 {
            return Err(gguf(format!(
                "tensor {name:?} offset {offset} is not aligned"
            )));
        }
        let end = data_start
            .checked_add(offset)
            .and_then(|s| s.checked_add(bytes));
        if end.is_none_or(|end| end > file_size) {
            return Err(gguf(format!(
                "file is truncated: tensor {name:?} needs {bytes} bytes at data offset {offset}, \
                 the file has {file_size} bytes"
            )));
        }
        let info = gguf_file::TensorInfo {
            ggml_dtype: dtype,
            shape: dims.into(),
            offset,
        };
        if tensor_infos.insert(name.clone(), info).is_some() {
            return Err(gguf(format!("tensor {name:?} appears twice")));
        }
    }
    Ok((tensor_infos, data_start))
}

/// Bytes a tensor of this shape and type takes, or `None` if the shape is impossible
/// (a row not made of whole blocks, or an overflow).
pub fn tensor_bytes(dims: &[usize], dtype: GgmlDType) -> Option<u64> {
    let block = dtype.block_size();
    // Quantized blocks run along the innermost (last, in candle's order) dimension.
    let inner = *dims.last()?;
    if inner % block != 0 {
        return None;
    }
    let elems = dims
        .iter()
        .try_fold(1u64, |acc, d| acc.checked_mul(*d as u64))?;
    (elems / block as u64).checked_mul(dtype.type_size() as u64)
}

/// The GGML tensor types this app reads (ggml.h `enum ggml_type`).
fn ggml_dtype(ty: u32) -> Option<GgmlDType> {
    Some(match ty {
        0 => GgmlDType::F32,
        1 => GgmlDType::F16,
        2 => GgmlDType::Q4_0,
        3 => GgmlDType::Q4_1,
        6 => GgmlDType::Q5_0,
        7 => GgmlDType::Q5_1,
        8 => GgmlDType::Q8_0,
        10 => GgmlDType::Q2K,
        11 => GgmlDType::Q3K,
        12 => GgmlDType::Q4K,
        13 => GgmlDType::Q5K,
        14 => GgmlDType::Q6K,
        30 => GgmlDType::BF16,
        _ => return None,
    })
}

fn gguf(msg: String) -> Error {
    Error::Gguf(msg)
}

fn io_err(e: std::io::Error) -> Error {
    Error::Gguf(format!("read failed: {e}"))
}

/// A reader that knows how many bytes are left and refuses to read past them, and counts
/// the values and string bytes it has made.
struct Bounded<'a, R> {
    inner: &'a mut R,
    pos: u64,
    len: u64,
    values: u64,
    string_bytes: u64,
}

impl<R: Read> Bounded<'_, R> {
    fn need(&self, n: u64) -> Result<(), Error> {
        let left = self.len.saturating_sub(self.pos);
        if n > left {
            return Err(gguf(format!(
                "file is truncated: {n} bytes needed at offset {}, {left} left",
                self.pos
            )));
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.need(N as u64)?;
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b).map_err(io_err)?;
        self.pos = self.pos.saturating_add(N as u64);
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Result<String, Error> {
        let n = self.u64()?;
        self.need(n)?;
        self.string_bytes = self.string_bytes.saturating_add(n);
        if self.string_bytes > MAX_STRING_BYTES {
            return Err(gguf(format!(
                "more than {MAX_STRING_BYTES} bytes of strings in the header"
            )));
        }
        let mut v = vec![0u8; n as usize];
        self.inner.read_exact(&mut v).map_err(io_err)?;
        self.pos = self.pos.saturating_add(n);
        // Some writers include a trailing NUL; GGUF strings are not NUL-terminated.
        while v.last() == Some(&0) {
            v.pop();
        }
        String::from_utf8(v).map_err(|_| gguf(format!("invalid UTF-8 in a string at {}", self.pos)))
    }

    /// Reads one metadata value of GGUF type `ty` (`enum gguf_type`).
    fn value(&mut self, ty: u32, depth: u32) -> Result<Value, Error> {
        self.values = self.values.saturating_add(1);
        if self.values > MAX_METADATA_VALUES {
            return Err(gguf(format!(
                "more than {MAX_METADATA_VALUES} metadata values"
            )));
        }
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.bytes()?)),
            1 => Value::I8(i8::from_le_bytes(self.bytes()?)),
            2 => Value::U16(u16::from_le_bytes(self.bytes()?)),
            3 => Value::I16(i16::from_le_bytes(self.bytes()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.bytes()?)),
            6 => Value::F32(f32::from_le_bytes(self.bytes()?)),
            7 => match self.bytes::<1>()? {
                [0] => Value::Bool(false),
                [1] => Value::Bool(true),
                [b] => return Err(gguf(format!("invalid boolean byte {b}"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(gguf("arrays nested too deeply".into()));
                }
                let elem_ty = self.u32()?;
                let n = self.u64()?;
                // Every element takes at least one byte: refuse counts the file cannot hold,
                // or the value budget cannot.
                self.need(n)?;
                if self.values.saturating_add(n) > MAX_METADATA_VALUES {
                    return Err(gguf(format!(
                        "an array of {n} values: more than {MAX_METADATA_VALUES} metadata values"
                    )));
                }
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.value(elem_ty, depth.saturating_add(1))?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.bytes()?)),
            12 => Value::F64(f64::from_le_bytes(self.bytes()?)),
            t => return Err(gguf(format!("unknown metadata value type {t}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Cursor;

    fn header(tensors: u64, kvs: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&GGUF_MAGIC.to_le_bytes());
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&tensors.to_le_bytes());
        v.extend_from_slice(&kvs.to_le_bytes());
        v
    }

    fn string(v: &mut Vec<u8>, s: &str) {
        v.extend_from_slice(&(s.len() as u64).to_le_bytes());
        v.extend_from_slice(s.as_bytes());
    }

    fn one_tensor(dims: &[u64], ty: u32, offset: u64, data: usize) -> Vec<u8> {
        let mut v = header(1, 0);
        string(&mut v, "t");
        v.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            v.extend_from_slice(&d.to_le_bytes());
        }
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&offset.to_le_bytes());
        v.resize(v.len().div_ceil(32) * 32 + data, 0);
        v
    }

    fn err(bytes: Vec<u8>) -> String {
        match read(&mut Cursor::new(bytes)) {
            Err(Error::Gguf(m)) => m,
            other => panic!("expected a GGUF error, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_valid_tensor_directory() {
        let g = read(&mut Cursor::new(one_tensor(&[32, 2], 8, 0, 68))).unwrap();
        let t = &g.content.tensor_infos["t"];
        assert_eq!(t.shape.dims(), &[2, 32]);
        assert_eq!(t.ggml_dtype, GgmlDType::Q8_0);
    }

    #[test]
    fn rejects_malformed_files_with_a_reason() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"GGML\x03\0\0\0".to_vec(), "not a GGUF file"),
            (header(0, 0)[..10].to_vec(), "truncated"),
            (
                {
                    let mut h = header(0, 0);
                    h[4] = 9;
                    h
                },
                "unsupported GGUF version 9",
            ),
            (header(u64::MAX, 0), "truncated"),
            (header(0, 1 << 40), "truncated"),
            (
                {
                    let mut h = header(0, 1);
                    string(&mut h, "k");
                    h.extend_from_slice(&8u32.to_le_bytes());
                    h.extend_from_slice(&u64::MAX.to_le_bytes());
                    h.extend_from_slice(&[0; 8]);
                    h
                },
                "truncated",
            ),
            (
                {
                    let mut h = header(0, 1);
                    string(&mut h, "k");
                    h.extend_from_slice(&99u32.to_le_bytes());
                    h.extend_from_slice(&[0; 8]);
                    h
                },
                "unknown metadata value type 99",
            ),
            (
                {
                    let mut h = header(0, 1);
                    string(&mut h, "k");
                    h.extend_from_slice(&9u32.to_le_bytes());
                    h.extend_from_slice(&4u32.to_le_bytes());
                    h.extend_from_slice(&(1u64 << 50).to_le_bytes());
                    h
                },
                "truncated",
            ),
            (one_tensor(&[32, 2], 8, 0, 10), "needs 68 bytes"),
            (
                one_tensor(&[u64::MAX, u64::MAX], 0, 0, 0),
                "impossible shape",
            ),
            (one_tensor(&[1 << 40, 1 << 20], 0, 0, 0), "would take"),
            (one_tensor(&[31], 8, 0, 64), "impossible shape"),
            (one_tensor(&[32], 99, 0, 64), "unsupported tensor type 99"),
            (one_tensor(&[32], 0, 3, 200), "not aligned"),
            (one_tensor(&[0], 0, 0, 0), "dimension 0"),
            (one_tensor(&[1, 1, 1, 1, 1], 0, 0, 64), "5 dimensions"),
            (
                // 8 Mi one-byte elements: 8 MiB in the file, 256 MiB once read.
                {
                    let mut h = header(0, 1);
                    string(&mut h, "k");
                    h.extend_from_slice(&9u32.to_le_bytes());
                    h.extend_from_slice(&0u32.to_le_bytes());
                    h.extend_from_slice(&(8u64 << 20).to_le_bytes());
                    h.resize(h.len() + (8 << 20), 0);
                    h
                },
                "more than 4194304 metadata values",
            ),
        ];
        for (bytes, want) in cases {
            let got = err(bytes);
            assert!(got.contains(want), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn every_prefix_of_a_valid_file_is_an_error_not_a_panic() {
        let full = one_tensor(&[32, 2], 8, 0, 68);
        for n in 0..full.len() {
            assert!(
                read(&mut Cursor::new(full[..n].to_vec())).is_err(),
                "prefix {n}"
            );
        }
    }
}
