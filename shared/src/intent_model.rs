//! The intent classifier's model: a linear softmax over TF-IDF features (`features.rs`),
//! trained by `tools/nlu-train` from a bot bundle's examples. Weights are stored as i8 with
//! one scale, for the features seen in training only, and only where they are not zero (about
//! seven in ten are), so the model stays small: four languages' models are compiled into the
//! chat and fulfillment binaries.
//!
//! Format (little-endian): `SBIM4\0`, u8 length + the language it was trained for (0: none),
//! u32 classes, per class u8 length + name, u32 features, f32 temperature, f32 weight scale,
//! the features' ids as a bitmap (`features::BUCKETS` bits, 32 KiB: bit `i % 8` of byte `i / 8`
//! is id `i`), u16 distinct idf values + those values as f32, features × u16 index of the
//! feature's idf in them (ids ascending), classes × f32 bias, then per feature a bitmask of the
//! classes whose weight is not zero (⌈classes / 8⌉ bytes, class `c` is bit `c % 8` of byte
//! `c / 8`), then those weights, feature by feature, classes ascending, two to a byte (weight
//! `k` in byte `k / 2`, the low four bits first) as 4-bit two's complement, where `-8` means
//! "the next of the escapes", then the escapes: the weights outside -7..=7, as i8, in order.
//!
//! What SBIM4 changed from SBIM3, which had a u32 id and an f32 idf a feature and a byte a
//! weight: a trained model has 20–34 thousand features, a few hundred to 1,600 distinct idf
//! values (one per document count), and weights that are mostly small (about half of them -1,
//! six in seven within -7..=7), so 8 bytes a feature became 2 and a 32 KiB bitmap, and a
//! weight half a byte (and one for the seventh that is escaped): 0.88 MB less over the four
//! compiled-in models. The ids are read from bits instead of checked for order.
//! Still read: `SBIM3\0` (as above, but features × u32 id, ascending, then features × f32 idf
//! instead of the bitmap and the table), `SBIM2\0` (u8 length + language, then as `SBIM1\0`)
//! and `SBIM1\0`, whose weights after the biases are dense, features × classes.

use std::borrow::Cow;

use crate::features;
use crate::nlu::Intent;

const MAGIC: &[u8; 6] = b"SBIM1\0";
/// A model that names its language, so a bundle whose languages were reordered (the first
/// one's model is `model.bin`) cannot read one language with another's model.
const MAGIC_WITH_LANGUAGE: &[u8; 6] = b"SBIM2\0";
/// Weights kept only where they are not zero.
const MAGIC_SPARSE: &[u8; 6] = b"SBIM3\0";
/// Ids as a bitmap and idf as an index into the distinct values: what is written now.
const MAGIC_COMPACT: &[u8; 6] = b"SBIM4\0";
/// Bytes of the id bitmap.
const ID_BITMAP_LEN: usize = (features::BUCKETS / 8) as usize;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("not an intent model (bad magic)")]
    Magic,
    #[error("the model file is truncated")]
    Truncated,
    #[error("a class name is not UTF-8")]
    Name,
    #[error("the model's feature ids are not strictly ascending")]
    Unsorted,
    #[error("the model's language is not a language code")]
    Language,
    #[error("the model's weight masks name classes it does not have")]
    Mask,
    #[error("the model's idf index points past its idf values")]
    Idf,
    #[error("the model's id bitmap does not hold as many ids as it has features")]
    Ids,
    #[error("the model has bytes after its weights")]
    Trailing,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntentModel {
    /// The language its examples were in (`None` for a model written before models said).
    pub language: Option<String>,
    pub classes: Vec<Intent>,
    pub ids: Vec<u32>,
    pub idf: Vec<f32>,
    pub bias: Vec<f32>,
    /// Per feature, which classes have a weight that is not zero (`mask_len()` bytes a row),
    /// those weights as nibbles, two to a byte (`-8`: the next of `escapes`), feature by
    /// feature, and the weights a nibble cannot hold (i8 as bytes). A compiled-in model's are
    /// read where the binary has them: no copy of every language's model at cold start.
    /// `set_weights` makes them from dense weights; `weights` gives them back. Reading a file
    /// checks that the three agree; code that sets them must keep them so (`set_weights` does).
    pub masks: Cow<'static, [u8]>,
    pub values: Cow<'static, [u8]>,
    pub escapes: Cow<'static, [u8]>,
    pub scale: f32,
    pub temperature: f32,
    /// Where each of `ids` is and where its weights start, built on first use (`ids` and the
    /// weights do not change after).
    pub rows: RowIndex,
}

/// Which row of a model holds a feature id, in constant time: a bit for every possible id
/// (`features::BUCKETS` of them: 32 KiB) and the count of ids before each 64-bit word. A
/// message's features each look one up, in each language's model: a binary search over tens of
/// thousands of ids was a tenth of a chat turn's own time.
#[derive(Debug, Default, Clone)]
pub struct RowIndex(std::sync::OnceLock<Rows>);

/// What scoring reads of a feature besides its mask and weights, laid out so that a feature
/// costs one cache line here (its id's word, then its row) instead of one per array: a turn
/// scores its message with caches the I/O between turns has emptied, so the scoring loop waited
/// on a miss for each of the id bitmap, the counts before it, the idf, the row's offset and its
/// escapes (the profile's hottest instructions were the loads just after those).
#[derive(Debug, Clone)]
struct Rows {
    words: Vec<IdWord>,
    rows: Vec<Row>,
}

/// 64 possible ids: which of them the model has, and how many it has before them.
#[derive(Debug, Clone, Copy)]
struct IdWord {
    bits: u64,
    before: u32,
}

/// One feature's row: where its weights start in `values` (in nibbles), how many of the escapes
/// come before them, and its idf (a copy of `IntentModel::idf`'s).
#[derive(Debug, Clone, Copy)]
struct Row {
    offset: u32,
    escapes_before: u32,
    idf: f32,
}

/// The nibble that stands for the next escaped weight.
const ESCAPE: u8 = 0x8;

/// Weights (i8 as bytes) packed two to a byte, and those a nibble cannot hold.
fn pack(weights: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut nibbles = vec![0u8; weights.len().div_ceil(2)];
    let mut escapes = Vec::new();
    for (k, &w) in weights.iter().enumerate() {
        let nibble = if (-7..=7).contains(&(w as i8)) {
            w & 0xf
        } else {
            escapes.push(w);
            ESCAPE
        };
        nibbles[k / 2] |= nibble << (4 * (k % 2));
    }
    (nibbles, escapes)
}

/// The `k`th packed nibble.
fn nibble(values: &[u8], k: usize) -> u8 {
    (values[k / 2] >> (4 * (k % 2))) & 0xf
}

/// The ESCAPE nibbles among the 16 of `word` (little-endian bytes, low nibble first): bit
/// `4k` is set where nibble `k` is ESCAPE. A nibble that is ESCAPE is all ones after the
/// xor: its lowest bit survives the shifts.
fn escape_marks(word: u64) -> u64 {
    let y = !(word ^ 0x8888_8888_8888_8888);
    y & (y >> 1) & (y >> 2) & (y >> 3) & 0x1111_1111_1111_1111
}

/// The `i`th eight bytes of `values`, the last padded with zero nibbles (never ESCAPE).
fn word_at(values: &[u8], i: usize) -> u64 {
    let bytes = values.get(i * 8..).unwrap_or_default();
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(word)
}

/// For each nibble position of `starts` (ascending or not), how many ESCAPE nibbles come
/// before it: one pass over `values` eight bytes at a time, then a masked count per start.
/// (Counting each row's own escapes with `escapes_between` cost ~0.7 ms a model at the first
/// turn's warm-up: rows are a few nibbles, the fixed cost per call was most of it.)
fn escapes_before_each(values: &[u8], starts: &[u32]) -> Vec<u32> {
    let words = values.len().div_ceil(8);
    let mut before_word = Vec::with_capacity(words);
    let mut seen = 0u32;
    for i in 0..words {
        before_word.push(seen);
        seen += escape_marks(word_at(values, i)).count_ones();
    }
    starts
        .iter()
        .map(|&at| {
            before_word.get(at as usize / 16).map_or(seen, |&before| {
                before + escapes_in_word_before(values, at as usize)
            })
        })
        .collect()
}

/// How many of the packed nibbles `from..to` are escapes (`from <= to`): what a model's file
/// has after its four-bit weights, counted at load.
fn escapes_between(values: &[u8], from: usize, to: usize) -> usize {
    let whole_words = |at: usize| -> usize {
        (0..at / 16)
            .map(|i| escape_marks(word_at(values, i)).count_ones() as usize)
            .sum()
    };
    let before = |at: usize| whole_words(at) + escapes_in_word_before(values, at) as usize;
    before(to) - before(from)
}

/// The ESCAPE nibbles of nibble `at`'s eight-byte word that come before it.
fn escapes_in_word_before(values: &[u8], at: usize) -> u32 {
    let below = (1u64 << (4 * (at % 16))) - 1;
    (escape_marks(word_at(values, at / 16)) & below).count_ones()
}

// A cache of `ids`: models are equal by what they hold.
impl PartialEq for RowIndex {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Rows {
    fn new(ids: &[u32], idf: &[f32], masks: &[u8], mask_len: usize, values: &[u8]) -> Self {
        let mut bits = vec![0u64; (features::BUCKETS as usize).div_ceil(64)];
        for &id in ids {
            // An id no feature can have (a model from elsewhere) is never looked up.
            if let Some(word) = bits.get_mut((id / 64) as usize) {
                *word |= 1 << (id % 64);
            }
        }
        let words = bits
            .iter()
            .zip(counts_before(bits.iter().map(|w| w.count_ones())))
            .map(|(&bits, before)| IdWord { bits, before })
            .collect();
        let offsets = counts_before(
            masks
                .chunks(mask_len.max(1))
                .map(|mask| mask.iter().map(|b| b.count_ones()).sum::<u32>()),
        );
        let escapes_before = escapes_before_each(values, &offsets);
        // A model being trained has its ids and idf before any weights: rows without a mask
        // have no weights to find.
        let rows = idf
            .iter()
            .enumerate()
            .map(|(i, &idf)| Row {
                offset: offsets.get(i).copied().unwrap_or(0),
                escapes_before: escapes_before.get(i).copied().unwrap_or(0),
                idf,
            })
            .collect();
        Self { words, rows }
    }

    /// The low bits of `id`'s word, for `touch`.
    fn word_bits(&self, id: u32) -> u8 {
        self.words
            .get((id / 64) as usize)
            .map_or(0, |w| w.bits as u8)
    }

    fn row(&self, id: u32) -> Option<usize> {
        let word = self.words.get((id / 64) as usize)?;
        let bit = 1u64 << (id % 64);
        (word.bits & bit != 0)
            .then(|| word.before as usize + (word.bits & (bit - 1)).count_ones() as usize)
    }
}

/// Reads every byte `bytes` yields, for what they bring into the cache. A message's features
/// are looked up in a model whose rows the I/O between turns has pushed out of the cache: one
/// feature at a time, each read waits for the miss before it (a row's offset, then its weights;
/// the inner loop's branches stop the processor from running ahead to the next feature's).
/// Read up front with nothing depending on them, a step's reads for all the features miss
/// together, so a message costs a few misses' wait per step instead of one per feature.
fn touch(bytes: impl Iterator<Item = u8>) {
    std::hint::black_box(bytes.fold(0u8, |all, b| all ^ b));
}

/// For each count, the sum of the ones before it: ids before a bitmap word, weights before a row.
fn counts_before(counts: impl Iterator<Item = u32>) -> Vec<u32> {
    counts
        .scan(0u32, |seen, n| {
            let at = *seen;
            *seen += n;
            Some(at)
        })
        .collect()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        if self.0.len() < n {
            return Err(ModelError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn f32(&mut self) -> Result<f32, ModelError> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    /// `n` little-endian 4-byte values, taken at once (a model has tens of thousands).
    fn words4<T>(&mut self, n: usize, from: fn([u8; 4]) -> T) -> Result<Vec<T>, ModelError> {
        let bytes = self.take(n.checked_mul(4).ok_or(ModelError::Truncated)?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| from(c.try_into().expect("4 bytes")))
            .collect())
    }
    fn u32s(&mut self, n: usize) -> Result<Vec<u32>, ModelError> {
        self.words4(n, u32::from_le_bytes)
    }
    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, ModelError> {
        self.words4(n, f32::from_le_bytes)
    }
    fn u16(&mut self) -> Result<u16, ModelError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }

    /// SBIM4's ids (a bitmap of `n` set bits) and idf (an index into the distinct values).
    fn compact_features(&mut self, n: usize) -> Result<(Vec<u32>, Vec<f32>), ModelError> {
        let bitmap = self.take(ID_BITMAP_LEN)?;
        let mut ids = Vec::with_capacity(n.min(features::BUCKETS as usize));
        for (at, chunk) in bitmap.chunks_exact(8).enumerate() {
            let mut word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            while word != 0 {
                ids.push(at as u32 * 64 + word.trailing_zeros());
                word &= word - 1;
            }
        }
        if ids.len() != n {
            return Err(ModelError::Ids);
        }
        let distinct = self.u16()? as usize;
        let values = self.f32s(distinct)?;
        let index = self.take(n.checked_mul(2).ok_or(ModelError::Truncated)?)?;
        let idf = index
            .chunks_exact(2)
            .map(|c| {
                let i = u16::from_le_bytes(c.try_into().expect("2 bytes")) as usize;
                values.get(i).copied().ok_or(ModelError::Idf)
            })
            .collect::<Result<_, _>>()?;
        Ok((ids, idf))
    }
}

impl IntentModel {
    /// A model read from `bytes`, its weights copied.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::read(bytes, |w| Cow::Owned(w.to_vec()))
    }

    /// A model compiled into the binary: its weights stay where they are.
    pub fn from_static(bytes: &'static [u8]) -> Result<Self, ModelError> {
        Self::read(bytes, Cow::Borrowed)
    }

    /// A bundle's model file: borrowed when compiled in, copied when read from a directory.
    // The `Cow` itself, not its bytes: whether they are the binary's (`'static`) decides.
    #[allow(clippy::ptr_arg)]
    pub fn from_file(bytes: &Cow<'static, [u8]>) -> Result<Self, ModelError> {
        match bytes {
            Cow::Borrowed(compiled_in) => Self::from_static(compiled_in),
            Cow::Owned(read) => Self::from_bytes(read),
        }
    }

    fn read<'a>(
        bytes: &'a [u8],
        keep: impl Fn(&'a [u8]) -> Cow<'static, [u8]>,
    ) -> Result<Self, ModelError> {
        let mut r = Reader(bytes);
        let magic = r.take(MAGIC.len())?;
        let compact = magic == MAGIC_COMPACT;
        let sparse = compact || magic == MAGIC_SPARSE;
        let language = if sparse || magic == MAGIC_WITH_LANGUAGE {
            let len = r.take(1)?[0] as usize;
            let code = std::str::from_utf8(r.take(len)?).map_err(|_| ModelError::Language)?;
            if sparse && code.is_empty() {
                None
            } else if crate::language::is_bundle_code(code) {
                Some(code.to_string())
            } else {
                return Err(ModelError::Language);
            }
        } else if magic == MAGIC {
            None
        } else {
            return Err(ModelError::Magic);
        };
        let n_classes = r.u32()? as usize;
        let mut classes = Vec::with_capacity(n_classes.min(256));
        for _ in 0..n_classes {
            let len = r.take(1)?[0] as usize;
            // Any name: whether the bundle has such an intent is the bundle loader's check.
            let name = std::str::from_utf8(r.take(len)?).map_err(|_| ModelError::Name)?;
            classes.push(Intent::new(name));
        }
        let n = r.u32()? as usize;
        let temperature = r.f32()?;
        let scale = r.f32()?;
        let (ids, idf) = if compact {
            r.compact_features(n)?
        } else {
            let ids = r.u32s(n)?;
            if ids.windows(2).any(|w| w[0] >= w[1]) {
                return Err(ModelError::Unsorted);
            }
            (ids, r.f32s(n)?)
        };
        let bias = r.f32s(n_classes)?;
        let mut model = Self {
            language,
            classes,
            ids,
            idf,
            bias,
            masks: Cow::Borrowed(&[]),
            values: Cow::Borrowed(&[]),
            escapes: Cow::Borrowed(&[]),
            scale,
            temperature,
            rows: RowIndex::default(),
        };
        let mask_len = model.mask_len();
        if sparse {
            let masks = r.take(n.checked_mul(mask_len).ok_or(ModelError::Truncated)?)?;
            // Bits past the last class would count weights that belong to no class.
            let spare = (mask_len * 8 - n_classes) as u32;
            let last_byte = u8::MAX.checked_shl(8 - spare).unwrap_or(0);
            if spare > 0
                && masks
                    .chunks(mask_len)
                    .any(|m| m[mask_len - 1] & last_byte != 0)
            {
                return Err(ModelError::Mask);
            }
            let nonzero: usize = masks.iter().map(|b| b.count_ones() as usize).sum();
            model.masks = keep(masks);
            if compact {
                let values = r.take(nonzero.div_ceil(2))?;
                // One encoding a model: the padding nibble of an odd count is zero, and nothing
                // follows the escapes (a writer that drifted is caught here, not by a wrong score).
                if nonzero % 2 == 1 && values[nonzero / 2] >> 4 != 0 {
                    return Err(ModelError::Trailing);
                }
                model.escapes = keep(r.take(escapes_between(values, 0, nonzero))?);
                model.values = keep(values);
                if !r.0.is_empty() {
                    return Err(ModelError::Trailing);
                }
            } else {
                let (values, escapes) = pack(r.take(nonzero)?);
                model.values = Cow::Owned(values);
                model.escapes = Cow::Owned(escapes);
            }
        } else {
            let dense = r.take(n.checked_mul(n_classes).ok_or(ModelError::Truncated)?)?;
            model.set_weights(dense);
        }
        Ok(model)
    }

    /// Bytes of one feature's class mask.
    pub fn mask_len(&self) -> usize {
        self.classes.len().div_ceil(8)
    }

    /// Sets the weights from dense ones, row-major (`dense[f * classes + c]`, i8 as bytes),
    /// keeping those that are not zero.
    pub fn set_weights(&mut self, dense: &[u8]) {
        let (k, m) = (self.classes.len(), self.mask_len());
        let mut masks = Vec::with_capacity(self.ids.len() * m);
        let mut values = Vec::new();
        for row in dense.chunks(k.max(1)) {
            let mut mask = vec![0u8; m];
            for (c, &w) in row.iter().enumerate() {
                if w != 0 {
                    mask[c / 8] |= 1 << (c % 8);
                    values.push(w);
                }
            }
            masks.extend(mask);
        }
        let (values, escapes) = pack(&values);
        self.masks = Cow::Owned(masks);
        self.values = Cow::Owned(values);
        self.escapes = Cow::Owned(escapes);
        self.rows = RowIndex::default();
    }

    /// Every weight that is not zero (i8 as bytes), feature by feature, classes ascending.
    pub fn weights(&self) -> Vec<u8> {
        let n = self.masks.iter().map(|b| b.count_ones() as usize).sum();
        let mut escapes = self.escapes.iter();
        (0..n)
            .map(|k| match nibble(&self.values, k) {
                ESCAPE => *escapes.next().expect("an escape for each escaped weight"),
                w => ((w << 4) as i8 >> 4) as u8,
            })
            .collect()
    }

    fn index(&self) -> &Rows {
        self.rows.0.get_or_init(|| {
            Rows::new(
                &self.ids,
                &self.idf,
                &self.masks,
                self.mask_len(),
                &self.values,
            )
        })
    }

    /// The row of feature `id`, when the model saw it in training.
    pub fn row(&self, id: u32) -> Option<usize> {
        self.index().row(id)
    }

    /// Whether the feature `id` was seen in training (a word of the language it reads).
    pub fn knows(&self, id: u32) -> bool {
        self.row(id).is_some()
    }

    /// For each of `ids`, in order, the log of the share of training examples that had the
    /// feature, when it was seen: the trainer's idf is `ln((n + 1) / (df + 1)) + 1`, so this is
    /// `1 - idf`. The ids' words and rows are read up front (see `touch`): a message's words
    /// are looked up in every language's model.
    pub fn log_shares(&self, ids: &[u32]) -> Vec<Option<f32>> {
        let index = self.index();
        touch(ids.iter().map(|&id| index.word_bits(id)));
        let rows: Vec<Option<usize>> = ids.iter().map(|&id| index.row(id)).collect();
        touch(
            rows.iter()
                .flatten()
                .map(|&r| index.rows[r].idf.to_bits() as u8),
        );
        rows.iter()
            .map(|r| r.map(|r| 1.0 - index.rows[r].idf))
            .collect()
    }

    /// What every format has after the magic and language: the classes with their names, the
    /// feature count, the temperature and the weight scale.
    fn write_head(&self, out: &mut Vec<u8>) {
        out.extend((self.classes.len() as u32).to_le_bytes());
        for c in &self.classes {
            out.push(c.name().len() as u8);
            out.extend(c.name().as_bytes());
        }
        out.extend((self.ids.len() as u32).to_le_bytes());
        out.extend(self.temperature.to_le_bytes());
        out.extend(self.scale.to_le_bytes());
    }

    /// The model in the current format (SBIM4). Its ids must be features' (below
    /// `features::BUCKETS`, ascending: what training makes) and it can have at most 65,535
    /// distinct idf values (training makes one per document count).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC_COMPACT.to_vec();
        let code = self.language.as_deref().unwrap_or_default();
        out.push(code.len() as u8);
        out.extend(code.as_bytes());
        self.write_head(&mut out);
        // The bitmap holds ids in order, the idf index in the model's: they agree only if the
        // ids ascend (as training and every reader make them).
        assert!(
            self.ids.windows(2).all(|w| w[0] < w[1]),
            "feature ids ascend, each once"
        );
        let mut bitmap = vec![0u8; ID_BITMAP_LEN];
        for &id in &self.ids {
            assert!(id < features::BUCKETS, "feature id {id} is not a feature's");
            bitmap[id as usize / 8] |= 1 << (id % 8);
        }
        out.extend(bitmap);
        // Distinct values by their bits, in order of first use: the same model, the same bytes.
        let mut distinct: Vec<u32> = Vec::new();
        let mut at: std::collections::HashMap<u32, u16> = std::collections::HashMap::new();
        let index: Vec<u16> = self
            .idf
            .iter()
            .map(|v| {
                *at.entry(v.to_bits()).or_insert_with(|| {
                    distinct.push(v.to_bits());
                    u16::try_from(distinct.len() - 1).expect("at most 65,535 distinct idf values")
                })
            })
            .collect();
        let count = u16::try_from(distinct.len()).expect("at most 65,535 distinct idf values");
        out.extend(count.to_le_bytes());
        distinct.iter().for_each(|v| out.extend(v.to_le_bytes()));
        index.iter().for_each(|i| out.extend(i.to_le_bytes()));
        self.bias.iter().for_each(|v| out.extend(v.to_le_bytes()));
        out.extend_from_slice(&self.masks);
        out.extend_from_slice(&self.values);
        out.extend_from_slice(&self.escapes);
        out
    }

    /// The model's input for a text: (row in the model, TF-IDF value), L2-normalised; features
    /// the model never saw are dropped.
    pub fn vectorize(&self, text: &str) -> Vec<(usize, f32)> {
        let index = self.index();
        let features = features::extract(text);
        // Each step's reads first, for every feature at once (see `touch`): the ids' words,
        // then the rows and masks of the features the model has.
        touch(features.iter().map(|&(id, _)| index.word_bits(id)));
        // Sized for every feature: a filtered collect grows by doubling, and a growth to a
        // kilobyte or more makes glibc consolidate its free chunks.
        let mut x: Vec<(usize, f32)> = Vec::with_capacity(features.len());
        x.extend(
            features
                .into_iter()
                .filter_map(|(id, tf)| index.row(id).map(|row| (row, tf))),
        );
        let m = self.mask_len();
        touch(x.iter().map(|&(row, _)| {
            index.rows[row].idf.to_bits() as u8 ^ self.masks.get(row * m).copied().unwrap_or(0)
        }));
        x.iter_mut().for_each(|(row, v)| *v *= index.rows[*row].idf);
        let norm = x.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            x.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        x
    }

    /// Each class's score (logit) before the temperature, in `classes` order. Only the weights
    /// that are not zero are added: the same sums as over every class.
    pub fn scores(&self, text: &str) -> Vec<f32> {
        let m = self.mask_len();
        let mut scores = self.bias.clone();
        if m == 0 {
            return scores;
        }
        let index = self.index();
        let x = self.vectorize(text);
        // The first weight (and escape) of every row, before any is added up (see `touch`).
        touch(x.iter().map(|&(row, _)| {
            let r = index.rows[row];
            let first = self.values.get(r.offset as usize / 2).copied().unwrap_or(0);
            first
                ^ self
                    .escapes
                    .get(r.escapes_before as usize)
                    .copied()
                    .unwrap_or(0)
        }));
        for (row, v) in x {
            let Row {
                offset,
                escapes_before,
                ..
            } = index.rows[row];
            let (mut at, mut escape) = (offset as usize, escapes_before as usize);
            for (byte, &mask) in self.masks[row * m..(row + 1) * m].iter().enumerate() {
                let mut bits = mask;
                while bits != 0 {
                    let c = byte * 8 + bits.trailing_zeros() as usize;
                    let w = match nibble(&self.values, at) {
                        ESCAPE => {
                            escape += 1;
                            self.escapes[escape - 1] as i8
                        }
                        // Sign-extended from four bits.
                        w => (w << 4) as i8 >> 4,
                    };
                    scores[c] += v * f32::from(w) * self.scale;
                    at += 1;
                    bits &= bits - 1;
                }
            }
        }
        scores
    }

    /// Every class with its probability, most likely first.
    pub fn predict(&self, text: &str) -> Vec<(Intent, f32)> {
        let mut out: Vec<(Intent, f32)> = self
            .classes
            .iter()
            .cloned()
            .zip(self.probabilities(text))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// Each class's probability (the softmax of its score at the model's temperature), in
    /// `classes` order.
    pub fn probabilities(&self, text: &str) -> Vec<f32> {
        let mut p = self.scores(text);
        let t = if self.temperature > 0.0 {
            self.temperature
        } else {
            1.0
        };
        let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        p.iter_mut().for_each(|s| *s = ((*s - max) / t).exp());
        let sum: f32 = p.iter().sum();
        p.iter_mut().for_each(|e| *e /= sum);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> IntentModel {
        // Two classes; the feature of the word "cancel" votes for cancel_order.
        let mut ids: Vec<u32> = features::extract("cancel")
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        ids.dedup();
        let n = ids.len();
        let mut m = IntentModel {
            language: None,
            classes: vec![Intent::new("cancel_order"), Intent::new("greet")],
            idf: vec![1.0; n],
            bias: vec![0.0, 0.5],
            masks: Default::default(),
            values: Default::default(),
            escapes: Default::default(),
            ids,
            scale: 0.05,
            temperature: 1.0,
            rows: Default::default(),
        };
        m.set_weights(&[100i8 as u8, -100i8 as u8].repeat(n));
        m
    }

    /// What the formats before SBIM4 wrote after the magic and language: classes, feature
    /// count, temperature, scale, ids as u32 and idf as f32, biases.
    fn legacy_header(m: &IntentModel) -> Vec<u8> {
        let mut out = Vec::new();
        m.write_head(&mut out);
        m.ids.iter().for_each(|i| out.extend(i.to_le_bytes()));
        m.idf.iter().for_each(|v| out.extend(v.to_le_bytes()));
        m.bias.iter().for_each(|v| out.extend(v.to_le_bytes()));
        out
    }

    /// The model as SBIM3 wrote it: sparse weights, ids and idf a value a feature.
    fn sbim3_bytes(m: &IntentModel) -> Vec<u8> {
        let mut out = MAGIC_SPARSE.to_vec();
        let code = m.language.as_deref().unwrap_or_default();
        out.push(code.len() as u8);
        out.extend(code.as_bytes());
        out.extend(legacy_header(m));
        out.extend_from_slice(&m.masks);
        out.extend(m.weights());
        out
    }

    /// The model as the formats before SBIM3 wrote it: dense weights.
    fn dense_bytes(m: &IntentModel, magic: &[u8; 6]) -> Vec<u8> {
        let mut out = magic.to_vec();
        if magic == MAGIC_WITH_LANGUAGE {
            let code = m.language.as_deref().unwrap();
            out.push(code.len() as u8);
            out.extend(code.as_bytes());
        }
        out.extend(legacy_header(m));
        let k = m.classes.len();
        let mut weights = m.weights().into_iter();
        for row in 0..m.ids.len() {
            for c in 0..k {
                if m.masks[row * m.mask_len() + c / 8] & (1 << (c % 8)) != 0 {
                    out.push(weights.next().unwrap());
                } else {
                    out.push(0);
                }
            }
        }
        out
    }

    #[test]
    fn round_trips_and_predicts() {
        let m = tiny();
        let back = IntentModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        let p = back.predict("please CANCEL it");
        assert_eq!(p[0].0.name(), "cancel_order");
        assert!(p[0].1 > 0.9);
        let sum: f32 = p.iter().map(|(_, v)| v).sum();
        assert!((sum - 1.0).abs() < 1e-5);
        // Nothing known: the biases decide.
        assert_eq!(back.predict("zzz")[0].0.name(), "greet");
        assert_eq!(back.predict("")[0].0.name(), "greet");
        // A model that names its language keeps it; one written before models did reads as
        // before.
        let es = IntentModel {
            language: Some("es".into()),
            ..tiny()
        };
        let bytes = es.to_bytes();
        assert!(bytes.starts_with(b"SBIM4\0\x02es"));
        assert_eq!(IntentModel::from_bytes(&bytes).unwrap(), es);
        assert!(m.to_bytes().starts_with(b"SBIM4\0\x00"));
    }

    #[test]
    fn models_in_the_format_before_still_read_and_predict_alike() {
        let mut rng = fastrand::Rng::with_seed(5);
        let m = IntentModel {
            language: Some("fr".into()),
            idf: (0..tiny().ids.len()).map(|_| rng.f32() + 1.0).collect(),
            ..tiny()
        };
        let old = IntentModel::from_bytes(&sbim3_bytes(&m)).unwrap();
        assert_eq!(old, m);
        assert_eq!(old.scores("cancel it"), m.scores("cancel it"));
        // And the compact form holds the same model in fewer bytes a feature.
        assert_eq!(IntentModel::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn idf_values_are_kept_exactly_and_shared() {
        let mut rng = fastrand::Rng::with_seed(9);
        let ids: Vec<u32> = {
            let mut v: Vec<u32> = (0..3000).map(|_| rng.u32(..features::BUCKETS)).collect();
            v.extend([0, features::BUCKETS - 1]);
            v.sort_unstable();
            v.dedup();
            v
        };
        // A few hundred distinct values, as document counts give, and ones that differ in
        // their last bit only.
        let idf: Vec<f32> = ids
            .iter()
            .map(|_| match rng.u8(..3) {
                0 => 1.0 + rng.u16(..300) as f32 / 7.0,
                1 => f32::from_bits(0x3fc0_0000 + rng.u32(..2)),
                _ => 2.5,
            })
            .collect();
        let mut m = IntentModel { idf, ids, ..tiny() };
        m.set_weights(&vec![1u8; m.ids.len() * m.classes.len()]);
        let back = IntentModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.ids, m.ids);
        assert!(back
            .idf
            .iter()
            .zip(&m.idf)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(back, m);
    }

    #[test]
    fn models_with_dense_weights_still_read_and_predict_alike() {
        let es = IntentModel {
            language: Some("es".into()),
            ..tiny()
        };
        for (model, magic) in [(&tiny(), MAGIC), (&es, MAGIC_WITH_LANGUAGE)] {
            let old = IntentModel::from_bytes(&dense_bytes(model, magic)).unwrap();
            assert_eq!(&old, model);
            for text in ["please cancel it", "hello", ""] {
                assert_eq!(old.scores(text), model.scores(text), "{text}");
            }
        }
    }

    #[test]
    fn only_weights_that_are_not_zero_are_kept_and_scores_are_the_dense_sums() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut ids: Vec<u32> = features::extract("where is my order and can I cancel it")
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        ids.dedup();
        let classes: Vec<Intent> = (0..13).map(|c| Intent::new(&format!("c{c}"))).collect();
        let k = classes.len();
        // Seven in ten zero, as in trained models.
        let dense: Vec<u8> = (0..ids.len() * k)
            .map(|_| {
                if rng.u8(..10) < 7 {
                    0
                } else {
                    rng.i8(..) as u8
                }
            })
            .collect();
        let mut m = IntentModel {
            language: None,
            classes,
            idf: (0..ids.len()).map(|_| rng.f32() + 0.5).collect(),
            bias: (0..k).map(|_| rng.f32()).collect(),
            masks: Default::default(),
            values: Default::default(),
            escapes: Default::default(),
            ids,
            scale: 0.01,
            temperature: 1.0,
            rows: Default::default(),
        };
        m.set_weights(&dense);
        let nonzero: Vec<u8> = dense.iter().copied().filter(|w| *w != 0).collect();
        assert_eq!(m.weights(), nonzero);
        let text = "can I cancel my order";
        let mut expected = m.bias.clone();
        for (row, v) in m.vectorize(text) {
            for (c, s) in expected.iter_mut().enumerate() {
                *s += v * f32::from(dense[row * k + c] as i8) * m.scale;
            }
        }
        assert_eq!(m.scores(text), expected);
        assert_eq!(IntentModel::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn every_weight_packs_and_decodes_as_itself() {
        // Every i8 but zero, in rows of three classes: nibbles, escapes (-128, -8, 8, 127 among
        // them), and rows that start in the middle of a byte.
        let all: Vec<u8> = (1..=255u8).collect();
        let ids: Vec<u32> = (0..all.len() as u32 / 3).map(|i| i * 97).collect();
        let mut m = IntentModel {
            classes: vec![Intent::new("a"), Intent::new("b"), Intent::new("c")],
            bias: vec![0.0; 3],
            idf: vec![1.0; ids.len()],
            ids,
            ..tiny()
        };
        m.set_weights(&all);
        assert_eq!(m.weights(), all);
        assert_eq!(
            m.escapes.len(),
            all.iter()
                .filter(|w| !(-7..=7).contains(&(**w as i8)))
                .count()
        );
        let back = IntentModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.weights(), all);
        // Each row alone: its scores are its weights.
        for (row, &id) in m.ids.iter().enumerate() {
            let index = m.index();
            let escape = index.rows[row].escapes_before as usize;
            let expect: Vec<i8> = all[row * 3..row * 3 + 3].iter().map(|w| *w as i8).collect();
            let mut escapes = m.escapes[escape..].iter();
            let got: Vec<i8> = (0..3)
                .map(|i| match nibble(&m.values, row * 3 + i) {
                    ESCAPE => *escapes.next().unwrap() as i8,
                    w => (w << 4) as i8 >> 4,
                })
                .collect();
            assert_eq!(got, expect, "row {row} (id {id})");
        }
    }

    #[test]
    fn escapes_are_counted_in_any_range() {
        let mut rng = fastrand::Rng::with_seed(3);
        let weights: Vec<u8> = (0..301).map(|_| rng.i8(-12..12) as u8).collect();
        let (values, _) = pack(&weights);
        let escaped = |w: &u8| !(-7..=7).contains(&(*w as i8));
        for _ in 0..2000 {
            let from = rng.usize(..=weights.len());
            let to = rng.usize(from..=weights.len());
            let expected = weights[from..to].iter().filter(|w| escaped(w)).count();
            assert_eq!(escapes_between(&values, from, to), expected, "{from}..{to}");
        }
        // Before every position at once, the padded last word and the very end included.
        let starts: Vec<u32> = (0..=weights.len() as u32).rev().collect();
        let before = escapes_before_each(&values, &starts);
        for (&at, &n) in starts.iter().zip(&before) {
            let expected = weights[..at as usize].iter().filter(|w| escaped(w)).count();
            assert_eq!(n as usize, expected, "before {at}");
        }
    }

    #[test]
    fn the_row_index_finds_what_a_search_of_the_ids_finds() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut ids: Vec<u32> = (0..5000).map(|_| rng.u32(..features::BUCKETS)).collect();
        // Both ends of the id space, and an id no feature has (kept last, as sorted).
        ids.extend([0, 63, 64, features::BUCKETS - 1, u32::MAX]);
        ids.sort_unstable();
        ids.dedup();
        let m = IntentModel {
            idf: vec![1.0; ids.len()],
            ids: ids.clone(),
            ..tiny()
        };
        for probe in ids
            .iter()
            .copied()
            .chain((0..20_000).map(|_| rng.u32(..features::BUCKETS)))
        {
            let expected = ids.binary_search(&probe).ok();
            let found = m.row(probe);
            if probe < features::BUCKETS {
                assert_eq!(found, expected, "{probe}");
            } else {
                assert_eq!(found, None, "no feature has {probe}");
            }
        }
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let bytes = tiny().to_bytes();
        assert_eq!(IntentModel::from_bytes(b"nope"), Err(ModelError::Truncated));
        assert_eq!(
            IntentModel::from_bytes(b"XXXXXXXXXX"),
            Err(ModelError::Magic)
        );
        for cut in [7, 20, bytes.len() - 1] {
            assert_eq!(
                IntentModel::from_bytes(&bytes[..cut]),
                Err(ModelError::Truncated)
            );
        }
        let mut renamed = bytes.clone();
        let at = MAGIC.len() + 1 + 4 + 1;
        renamed[at] = 0xff;
        assert_eq!(IntentModel::from_bytes(&renamed), Err(ModelError::Name));
        let mut bad = IntentModel {
            language: Some("../x".into()),
            ..tiny()
        }
        .to_bytes();
        assert_eq!(IntentModel::from_bytes(&bad), Err(ModelError::Language));
        bad[7] = 0xff;
        assert_eq!(IntentModel::from_bytes(&bad), Err(ModelError::Language));
        // A mask bit for a third class of a two-class model.
        let m = tiny();
        let mut masked = m.to_bytes();
        let first_mask = masked.len() - m.escapes.len() - m.values.len() - m.masks.len();
        masked[first_mask] |= 0b100;
        assert_eq!(IntentModel::from_bytes(&masked), Err(ModelError::Mask));
        // The id bitmap with one id more than the model's features, and an idf index past the
        // distinct values (one, 1.0: tiny's). The bitmap follows the header's 12 bytes.
        let bitmap =
            MAGIC.len() + 1 + 4 + m.classes.iter().map(|c| 1 + c.name().len()).sum::<usize>() + 12;
        let free = (0..ID_BITMAP_LEN)
            .find(|&i| bytes[bitmap + i] == 0)
            .unwrap();
        let mut extra = bytes.clone();
        extra[bitmap + free] = 1;
        assert_eq!(IntentModel::from_bytes(&extra), Err(ModelError::Ids));
        let index = bitmap + ID_BITMAP_LEN + 2 + 4;
        let mut past = bytes.clone();
        past[index] = 1;
        assert_eq!(IntentModel::from_bytes(&past), Err(ModelError::Idf));
        // Bytes after the escapes, and a padding nibble that is not zero (tiny has one weight
        // a feature in each of two classes, so an odd count needs a model of its own).
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(IntentModel::from_bytes(&longer), Err(ModelError::Trailing));
        let mut odd = tiny();
        odd.set_weights(
            &[1, 0]
                .repeat(odd.ids.len() - 1)
                .into_iter()
                .chain([1, 1])
                .collect::<Vec<u8>>(),
        );
        assert_eq!(odd.weights().len() % 2, 1, "an odd count of weights");
        let mut padded = odd.to_bytes();
        assert_eq!(IntentModel::from_bytes(&padded).unwrap(), odd);
        let last = padded.len() - odd.escapes.len() - 1;
        padded[last] |= 0x10;
        assert_eq!(IntentModel::from_bytes(&padded), Err(ModelError::Trailing));
        // Truncated inside the bitmap and inside the idf values.
        for cut in [bitmap + 100, index - 1] {
            assert_eq!(
                IntentModel::from_bytes(&bytes[..cut]),
                Err(ModelError::Truncated)
            );
        }
    }
}
