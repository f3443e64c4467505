//! NumPy's `.npy` format, versions 1.0 to 3.0: a magic string, a version, a header length,
//! a Python dict literal (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`)
//! padded with spaces to a multiple of 64 bytes, then the raw elements.
//!
//! Reading takes floats, signed and unsigned ints and bools of either byte order, in C or
//! Fortran order, and converts to float32 as `torch.from_numpy(a).float()` would. Writing
//! produces version 1.0 (2.0 when the header needs it), little-endian float32, C order:
//! exactly what `numpy.save` writes for a float32 array. Every malformed input is an
//! [`NpyError`] that says what is wrong; nothing here panics on bad bytes.

use std::io::Read;

use super::core::Tensor;

/// The first six bytes of every `.npy` file.
const MAGIC: &[u8] = b"\x93NUMPY";

/// Most header bytes accepted: numpy itself refuses headers above 10 000 bytes by default;
/// a larger bound still keeps a corrupt length from allocating gigabytes.
const MAX_HEADER: usize = 1 << 20;

/// Most dims an array may have: numpy's own limit (`NPY_MAXDIMS`).
pub const MAX_DIMS: usize = 64;

/// What is wrong with bytes that should be a `.npy` file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NpyError {
    /// The file does not start with `\x93NUMPY`.
    #[error("it does not start with the npy magic string `\\x93NUMPY`")]
    BadMagic,
    /// A format version this reader does not know.
    #[error("npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)")]
    UnsupportedVersion {
        /// The major version byte.
        major: u8,
        /// The minor version byte.
        minor: u8,
    },
    /// The file ends before the part named.
    #[error("the file ends inside its {what}")]
    Truncated {
        /// `"header"`, `"data"`.
        what: &'static str,
    },
    /// The header dict cannot be read.
    #[error("bad header: {detail}")]
    BadHeader {
        /// What is wrong, with the header text where it helps.
        detail: String,
    },
    /// An element type other than float, int, unsigned int or bool.
    #[error("element type `{descr}` is not supported (floats, ints and bools are)")]
    UnsupportedDtype {
        /// The `descr` as written.
        descr: String,
    },
    /// More data than the shape holds.
    #[error("the data holds {actual} bytes, the shape {shape:?} needs {expected}")]
    WrongSize {
        /// The declared shape.
        shape: Vec<usize>,
        /// Bytes the shape needs.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
}

/// An element type: its kind, size in bytes and byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtype {
    kind: u8,
    size: usize,
    big_endian: bool,
}

impl Dtype {
    /// Whether `descr` names an element type [`decode`] reads.
    pub fn supported(descr: &str) -> bool {
        Dtype::parse(descr).is_ok()
    }

    fn parse(descr: &str) -> Result<Dtype, NpyError> {
        let unsupported = || NpyError::UnsupportedDtype {
            descr: descr.to_string(),
        };
        let bytes = descr.as_bytes();
        let (order, rest) = match bytes.first() {
            Some(b'<' | b'>' | b'|' | b'=') => (bytes[0], &bytes[1..]),
            _ => (b'=', bytes),
        };
        let (&kind, size) = rest.split_first().ok_or_else(unsupported)?;
        let size: usize = std::str::from_utf8(size)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(unsupported)?;
        let ok = match kind {
            b'f' => matches!(size, 4 | 8),
            b'i' | b'u' => matches!(size, 1 | 2 | 4 | 8),
            b'b' => size == 1,
            _ => false,
        };
        if !ok {
            return Err(unsupported());
        }
        Ok(Dtype {
            kind,
            size,
            big_endian: order == b'>' || (order == b'=' && cfg!(target_endian = "big")),
        })
    }

    /// One element as f32, from exactly `size` bytes.
    fn decode(self, raw: &[u8]) -> f32 {
        let mut b = [0u8; 8];
        b[..self.size].copy_from_slice(raw);
        if self.big_endian {
            b[..self.size].reverse();
        }
        match (self.kind, self.size) {
            (b'f', 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            (b'f', _) => f64::from_le_bytes(b) as f32,
            (b'b', _) => f32::from(u8::from(b[0] != 0)),
            (b'u', _) => u64::from_le_bytes(b) as f32,
            (_, n) => {
                // Sign-extend an n-byte little-endian int.
                let shift = 64 - 8 * n as u32;
                ((i64::from_le_bytes(b) << shift) >> shift) as f32
            }
        }
    }
}

/// A parsed header: element type, layout and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The `descr` string, such as `<f4`.
    pub descr: String,
    /// Whether the data is stored column-major.
    pub fortran_order: bool,
    /// The array's shape (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// Bytes before the data: magic, version, length and header.
    pub data_offset: usize,
    /// Bytes of data the shape and element type need.
    pub data_len: usize,
}

/// The header of the `.npy` file at `path`, validated as [`decode`] validates it, when the
/// file is a regular file whose size is exactly what its header says: the checker's view
/// of the shape `load_npy` will give. Nothing is read from anything but a regular file (a
/// FIFO or a device would block or never end); `None` when anything is amiss.
pub fn file_header(path: &std::path::Path) -> Option<Header> {
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok().filter(|m| m.is_file())?.len();
    let header = read_header(&mut std::io::BufReader::new(file)).ok()?;
    let total = header.data_offset.checked_add(header.data_len)?;
    (u64::try_from(total).ok()? == size).then_some(header)
}

/// Reads only the header from `reader` (for the checker, which wants a file's shape
/// without its data), refusing a shape no array can have: more than [`MAX_DIMS`] dims, a
/// dim above `i64::MAX`, or more bytes than memory can address.
pub fn read_header(reader: &mut impl Read) -> Result<Header, NpyError> {
    let mut prefix = [0u8; 12];
    let n = read_up_to(reader, &mut prefix)?;
    let (header_len, len_bytes) = header_length(&prefix[..n])?;
    let start = 8 + len_bytes;
    let mut text = vec![0u8; header_len];
    // The prefix already holds the first few header bytes.
    let have = n.saturating_sub(start).min(header_len);
    text[..have].copy_from_slice(&prefix[start..start + have]);
    if read_up_to(reader, &mut text[have..])? != header_len - have {
        return Err(NpyError::Truncated { what: "header" });
    }
    parse_dict(&text, start + header_len)
}

/// The bytes of data `shape` holds in elements of `descr`, if such an array can exist.
fn data_len(descr: &str, shape: &[usize]) -> Result<usize, NpyError> {
    let dtype = Dtype::parse(descr)?;
    let too_large = || NpyError::BadHeader {
        detail: format!("the shape {shape:?} is too large"),
    };
    if shape.len() > MAX_DIMS {
        return Err(NpyError::BadHeader {
            detail: format!(
                "{} dims, more than the {MAX_DIMS} an array can have",
                shape.len()
            ),
        });
    }
    if shape.iter().any(|&d| i64::try_from(d).is_err()) {
        return Err(too_large());
    }
    shape
        .iter()
        .try_fold(dtype.size, |acc, &d| acc.checked_mul(d))
        .filter(|&n| isize::try_from(n).is_ok())
        .ok_or_else(too_large)
}

/// Reads into `buf` until it is full or the input ends; the count read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, NpyError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(k) => filled += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(NpyError::Truncated { what: "header" }),
        }
    }
    Ok(filled)
}

/// The header's length and how many bytes encode it (2 in version 1, 4 after).
fn header_length(bytes: &[u8]) -> Result<(usize, usize), NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (Some(&major), Some(&minor)) = (bytes.get(6), bytes.get(7)) else {
        return Err(NpyError::Truncated { what: "header" });
    };
    let len_bytes = match (major, minor) {
        (1, 0) => 2,
        (2 | 3, 0) => 4,
        _ => return Err(NpyError::UnsupportedVersion { major, minor }),
    };
    let Some(raw) = bytes.get(8..8 + len_bytes) else {
        return Err(NpyError::Truncated { what: "header" });
    };
    let len = raw
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    if len > MAX_HEADER {
        return Err(NpyError::BadHeader {
            detail: format!("its length {len} is implausibly large"),
        });
    }
    Ok((len, len_bytes))
}

/// Parses the whole file's header.
pub fn parse_header(bytes: &[u8]) -> Result<Header, NpyError> {
    read_header(&mut &bytes[..])
}

/// Decodes a whole `.npy` file into a float32 tensor.
pub fn decode(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let header = parse_header(bytes)?;
    let dtype = Dtype::parse(&header.descr)?;
    let expected = header.data_len;
    let numel = expected / dtype.size;
    let data = &bytes[header.data_offset.min(bytes.len())..];
    if data.len() < expected {
        return Err(NpyError::Truncated { what: "data" });
    }
    if data.len() > expected {
        return Err(NpyError::WrongSize {
            shape: header.shape,
            expected,
            actual: data.len(),
        });
    }
    let stored: Vec<f32> = data
        .chunks_exact(dtype.size)
        .map(|c| dtype.decode(c))
        .collect();
    let values = if header.fortran_order && header.shape.len() > 1 {
        fortran_to_c(&stored, &header.shape)
    } else {
        stored
    };
    debug_assert_eq!(values.len(), numel);
    Tensor::from_vec(values, &header.shape).map_err(|e| NpyError::BadHeader {
        detail: e.to_string(),
    })
}

/// Reorders column-major elements into row-major order.
fn fortran_to_c(stored: &[f32], shape: &[usize]) -> Vec<f32> {
    // Column-major strides: the first dim varies fastest.
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(stored.len());
    for _ in 0..stored.len() {
        let offset: usize = index.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(stored[offset]);
        // Advance the row-major multi-index: the last dim fastest.
        for k in (0..shape.len()).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Encodes a tensor as numpy writes a C-order little-endian float32 array.
pub fn encode(t: &Tensor) -> Vec<u8> {
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Version 1.0 has a 2-byte length; larger headers need 2.0's 4 bytes.
    let (version, len_bytes) = if dict.len() + 11 + 63 <= usize::from(u16::MAX) {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    let unpadded = MAGIC.len() + 2 + len_bytes + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let values = t.to_vec();
    let mut out = Vec::with_capacity(unpadded + 64 + 4 * values.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    out.extend_from_slice(&(dict.len() as u32).to_le_bytes()[..len_bytes]);
    out.extend_from_slice(dict.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses the header dict: `descr`, `fortran_order` and `shape`, each exactly once.
fn parse_dict(text: &[u8], data_offset: usize) -> Result<Header, NpyError> {
    let bad = |detail: String| NpyError::BadHeader { detail };
    let text = std::str::from_utf8(text).map_err(|_| bad("it is not text".to_string()))?;
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.skip_space();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.expect(b':')?;
        match key.as_str() {
            "descr" if descr.is_none() => descr = Some(p.string()?),
            "fortran_order" if fortran.is_none() => fortran = Some(p.boolean()?),
            "shape" if shape.is_none() => shape = Some(p.tuple()?),
            other => return Err(bad(format!("unexpected or repeated key `{other}`"))),
        }
        p.skip_space();
        if !p.eat(b',') {
            p.expect(b'}')?;
            break;
        }
    }
    if !p.s[p.at..].iter().all(u8::is_ascii_whitespace) {
        return Err(bad("text after the closing `}`".to_string()));
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran_order), Some(shape)) => Ok(Header {
            data_len: data_len(&descr, &shape)?,
            descr,
            fortran_order,
            shape,
            data_offset,
        }),
        _ => Err(bad(
            "it needs the keys 'descr', 'fortran_order' and 'shape'".to_string(),
        )),
    }
}

/// A cursor over the header text.
struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.s.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.eat(c) {
            return Ok(());
        }
        let found = match self.s.get(self.at) {
            Some(&b) => format!("`{}`", char::from(b)),
            None => "the end".to_string(),
        };
        Err(NpyError::BadHeader {
            detail: format!(
                "expected `{}` at byte {}, found {found}",
                char::from(c),
                self.at
            ),
        })
    }

    /// A quoted string, `'...'` or `"..."` (no escapes: numpy never writes any).
    fn string(&mut self) -> Result<String, NpyError> {
        self.skip_space();
        let quote = match self.s.get(self.at) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(NpyError::BadHeader {
                    detail: format!("expected a quoted string at byte {}", self.at),
                });
            }
        };
        let start = self.at + 1;
        let len = self.s[start..]
            .iter()
            .position(|&b| b == quote)
            .ok_or_else(|| NpyError::BadHeader {
                detail: "a string is not closed".to_string(),
            })?;
        self.at = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }

    fn boolean(&mut self) -> Result<bool, NpyError> {
        self.skip_space();
        for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.at..].starts_with(word) {
                self.at += word.len();
                return Ok(value);
            }
        }
        Err(NpyError::BadHeader {
            detail: "'fortran_order' must be True or False".to_string(),
        })
    }

    /// `()`, `(3,)`, `(2, 3)`: sizes as non-negative integers.
    fn tuple(&mut self) -> Result<Vec<usize>, NpyError> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.skip_space();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.at;
            while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
                self.at += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("");
            // numpy may write `3L` on Python 2.
            if self.s.get(self.at) == Some(&b'L') {
                self.at += 1;
            }
            let d = digits.parse().map_err(|_| NpyError::BadHeader {
                detail: format!("'shape' must be a tuple of sizes, at byte {start}"),
            })?;
            dims.push(d);
            if !self.eat(b',') {
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file as `numpy.save("x.npy", numpy.arange(6, dtype="<f4").reshape(2, 3))` writes it.
    fn numpy_fixture() -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        b.extend_from_slice(dict.as_bytes());
        b.extend(std::iter::repeat_n(b' ', 128 - 10 - dict.len() - 1));
        b.push(b'\n');
        for v in 0..6 {
            b.extend_from_slice(&(v as f32).to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_what_numpy_writes() {
        let bytes = numpy_fixture();
        assert_eq!(bytes.len(), 128 + 24);
        let t = decode(&bytes).unwrap();
        assert_eq!(t.shape(), [2, 3]);
        assert_eq!(t.to_vec(), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn writes_what_numpy_writes() {
        let t = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]).unwrap();
        assert_eq!(encode(&t), numpy_fixture());
    }

    #[test]
    fn round_trips_every_rank() {
        for shape in [vec![], vec![0], vec![5], vec![2, 3], vec![2, 1, 3, 2]] {
            let n: usize = shape.iter().product();
            let t =
                Tensor::from_vec((0..n).map(|v| v as f32 * 0.5 - 1.0).collect(), &shape).unwrap();
            let bytes = encode(&t);
            assert_eq!((bytes.len() - 4 * n) % 64, 0, "{shape:?}");
            let back = decode(&bytes).unwrap();
            assert_eq!(back.shape(), &shape[..]);
            assert_eq!(back.to_vec(), t.to_vec());
        }
    }

    fn file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let dict =
            format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}\n");
        let mut b = b"\x93NUMPY\x03\x00".to_vec();
        b.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        b.extend_from_slice(dict.as_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn converts_other_dtypes_to_float32() {
        let i8s = file("|i1", false, "(3,)", &[0xff, 2, 0x80]);
        assert_eq!(decode(&i8s).unwrap().to_vec(), [-1.0, 2.0, -128.0]);
        let big: Vec<u8> = [1i32, -7].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            decode(&file(">i4", false, "(2,)", &big)).unwrap().to_vec(),
            [1.0, -7.0]
        );
        let f64s: Vec<u8> = [0.25f64, 1e3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            decode(&file("<f8", false, "(2,)", &f64s)).unwrap().to_vec(),
            [0.25, 1000.0]
        );
        let bools = file("|b1", false, "(2,)", &[1, 0]);
        assert_eq!(decode(&bools).unwrap().to_vec(), [1.0, 0.0]);
        let u16s: Vec<u8> = [65535u16].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            decode(&file("<u2", false, "(1,)", &u16s)).unwrap().to_vec(),
            [65535.0]
        );
    }

    #[test]
    fn fortran_order_is_reordered() {
        // [[1, 2, 3], [4, 5, 6]] stored column by column.
        let data: Vec<u8> = [1f32, 4.0, 2.0, 5.0, 3.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let t = decode(&file("<f4", true, "(2, 3)", &data)).unwrap();
        assert_eq!(t.to_vec(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn says_what_is_wrong() {
        let wrong = |bytes: &[u8]| decode(bytes).unwrap_err().to_string();
        assert!(wrong(b"PK\x03\x04").contains("magic"));
        assert!(wrong(b"\x93NUMPY\x04\x00").contains("version 4.0"));
        assert!(wrong(&file("<c8", false, "(1,)", &[0; 8])).contains("`<c8`"));
        assert!(wrong(&file("<f4", false, "(2,)", &[0; 4])).contains("ends inside its data"));
        assert!(wrong(&file("<f4", false, "(1,)", &[0; 8])).contains("needs 4"));
        assert!(wrong(&file("<f4", false, "(-1,)", &[])).contains("'shape'"));
        let mut cut = numpy_fixture();
        cut.truncate(40);
        assert!(wrong(&cut).contains("ends inside its header"));
    }

    #[test]
    fn reads_only_the_header() {
        let bytes = numpy_fixture();
        let header = read_header(&mut &bytes[..128]).unwrap();
        assert_eq!(header.shape, [2, 3]);
        assert_eq!(header.data_offset, 128);
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn corrupted_files_never_panic(at in 0usize..152, byte in proptest::prelude::any::<u8>(), cut in 0usize..160) {
            let mut bytes = numpy_fixture();
            bytes[at] = byte;
            bytes.truncate(cut);
            let _ = decode(&bytes);
        }
    }
}
