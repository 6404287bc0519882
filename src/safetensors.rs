//! The safetensors format, read and written without trusting the header: every offset, size and
//! overlap is checked against the bytes actually present before anything is sliced, and nothing is
//! allocated from a size the header merely claims.
//!
//! Layout: u64 little-endian header length N, N bytes of JSON
//! `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
//! then the data, offsets relative to its start.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    I64,
    I32,
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            _ => return None,
        })
    }
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::I64 => 8,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SafetensorsError(pub String);

impl fmt::Display for SafetensorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid safetensors file: {}", self.0)
    }
}

impl std::error::Error for SafetensorsError {}

/// A model file that is not valid safetensors: said in words (the file is the user's input).
impl From<SafetensorsError> for crate::error::Error {
    fn from(e: SafetensorsError) -> crate::error::Error {
        crate::error::Error::Data { line: 0, message: e.to_string() }
    }
}

fn err<T>(m: impl Into<String>) -> Result<T, SafetensorsError> {
    Err(SafetensorsError(m.into()))
}

#[derive(Debug, Clone)]
pub struct TensorView<'a> {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: &'a [u8],
}

impl TensorView<'_> {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The values as f32 (F16 and BF16 widened exactly; integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        let d = self.data;
        match self.dtype {
            Dtype::F32 => d.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F16 => d.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::BF16 => d.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32).collect(),
            Dtype::I64 => d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
        }
    }

    pub fn to_i64(&self) -> Vec<i64> {
        let d = self.data;
        match self.dtype {
            Dtype::I64 => d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect(),
            Dtype::I32 => d.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect(),
            _ => self.to_f32().into_iter().map(|v| v as i64).collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SafeTensors<'a> {
    pub tensors: BTreeMap<String, TensorView<'a>>,
    pub metadata: BTreeMap<String, String>,
}

/// Largest header we accept: real headers are kilobytes; this bounds what a hostile length can make
/// us parse.
const MAX_HEADER: u64 = 100 << 20;

pub fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>, SafetensorsError> {
    if bytes.len() < 8 {
        return err(format!("the file is {} bytes, shorter than the 8-byte header length", bytes.len()));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    if n > MAX_HEADER {
        return err(format!("the header claims {n} bytes (more than the 100 MiB allowed)"));
    }
    if n > (bytes.len() - 8) as u64 {
        return err(format!("the header claims {n} bytes but only {} follow (truncated file?)", bytes.len() - 8));
    }
    let header = &bytes[8..8 + n as usize];
    let data = &bytes[8 + n as usize..];
    let json: serde_json::Value = serde_json::from_slice(header).map_err(|e| SafetensorsError(format!("the header is not JSON: {e}")))?;
    let obj = json.as_object().ok_or_else(|| SafetensorsError("the header is not a JSON object".into()))?;
    let mut tensors = BTreeMap::new();
    let mut metadata = BTreeMap::new();
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    for (name, v) in obj {
        if name == "__metadata__" {
            if let Some(m) = v.as_object() {
                for (k, val) in m {
                    metadata.insert(k.clone(), val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string()));
                }
            }
            continue;
        }
        let bad = |what: &str| SafetensorsError(format!("tensor '{name}': {what}"));
        let dtype_s = v.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| bad("no dtype"))?;
        let dtype = Dtype::parse(dtype_s).ok_or_else(|| bad(&format!("unsupported dtype {dtype_s} (F32, F16, BF16, I32, I64 are)")))?;
        let shape: Vec<usize> = v
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|x| x as usize).ok_or_else(|| bad("a shape entry is not a non-negative integer")))
            .collect::<Result<_, _>>()?;
        let offs = v.get("data_offsets").and_then(|o| o.as_array()).ok_or_else(|| bad("no data_offsets"))?;
        if offs.len() != 2 {
            return Err(bad("data_offsets must be [begin, end]"));
        }
        let (b, e) = match (offs[0].as_u64(), offs[1].as_u64()) {
            (Some(b), Some(e)) => (b, e),
            _ => return Err(bad("data_offsets are not integers")),
        };
        if b > e || e > data.len() as u64 {
            return Err(bad(&format!("data_offsets [{b}, {e}] fall outside the {} data bytes present", data.len())));
        }
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("shape overflows"))?;
        let want = numel.checked_mul(dtype.size()).ok_or_else(|| bad("size overflows"))?;
        if want as u64 != e - b {
            return Err(bad(&format!("shape {shape:?} of {dtype_s} needs {want} bytes but data_offsets span {}", e - b)));
        }
        spans.push((b as usize, e as usize, name.clone()));
        tensors.insert(name.clone(), TensorView { dtype, shape, data: &data[b as usize..e as usize] });
    }
    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return err(format!("tensors '{}' and '{}' overlap", w[0].2, w[1].2));
        }
    }
    Ok(SafeTensors { tensors, metadata })
}

/// Serialises f32 tensors (name, shape, values) in name order, header padded to 8 bytes.
pub fn serialize(tensors: &[(String, Vec<usize>, Vec<f32>)], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    serialize_as(tensors, metadata, Dtype::F32)
}

/// As [`serialize`], storing every tensor as `dtype` (F32, F16 or BF16; rounding to nearest).
pub fn serialize_as(tensors: &[(String, Vec<usize>, Vec<f32>)], metadata: &BTreeMap<String, String>, dtype: Dtype) -> Vec<u8> {
    let encode = |vals: &[f32]| -> Vec<u8> {
        match dtype {
            Dtype::F16 => vals.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect(),
            Dtype::BF16 => vals.iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect(),
            _ => bytemuck::cast_slice(vals).to_vec(),
        }
    };
    let mut sorted: Vec<&(String, Vec<usize>, Vec<f32>)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), serde_json::to_value(metadata).unwrap_or_default());
    }
    let mut off = 0usize;
    for (name, shape, vals) in &sorted {
        let n = vals.len() * dtype.size();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap_or_default();
    while (h.len() + 8) % 8 != 0 {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + off);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for (_, _, vals) in &sorted {
        out.extend_from_slice(&encode(vals));
    }
    out
}
