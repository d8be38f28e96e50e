//! Trains the intent model: TF-IDF over `switchboard::features`, a softmax regression fitted
//! by plain SGD, weights quantized to i8.

use std::collections::HashMap;

use switchboard::features;
use switchboard::intent_model::IntentModel;
use switchboard::nlu::Intent;

pub struct Options {
    pub epochs: usize,
    pub learning_rate: f32,
    pub l2: f32,
    /// Features seen in fewer examples than this are dropped (noise, and size).
    pub min_df: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            epochs: 25,
            learning_rate: 0.5,
            l2: 1e-6,
            min_df: 2,
            seed: 2026,
        }
    }
}

pub fn train(examples: &[(Intent, String)], o: &Options) -> IntentModel {
    let classes: Vec<Intent> = Intent::ALL
        .into_iter()
        .filter(|i| examples.iter().any(|(e, _)| e == i))
        .collect();
    let k = classes.len();
    let raw: Vec<(usize, Vec<(u32, f32)>)> = examples
        .iter()
        .map(|(intent, text)| {
            let c = classes.iter().position(|x| x == intent).expect("listed");
            (c, features::extract(text))
        })
        .collect();

    let mut df: HashMap<u32, usize> = HashMap::new();
    for (_, f) in &raw {
        for (id, _) in f {
            *df.entry(*id).or_default() += 1;
        }
    }
    let mut ids: Vec<u32> = df
        .iter()
        .filter(|(_, n)| **n >= o.min_df)
        .map(|(id, _)| *id)
        .collect();
    ids.sort_unstable();
    let n_docs = raw.len() as f32;
    let idf: Vec<f32> = ids
        .iter()
        .map(|id| ((n_docs + 1.0) / (df[id] as f32 + 1.0)).ln() + 1.0)
        .collect();

    let mut model = IntentModel {
        classes,
        ids,
        idf,
        bias: vec![0.0; k],
        weights: Vec::new(),
        scale: 1.0,
        temperature: 1.0,
    };
    // Vectorized once, with the model's own code, so training sees what prediction sees.
    let data: Vec<(usize, Vec<(usize, f32)>)> = examples
        .iter()
        .zip(&raw)
        .map(|((_, text), (c, _))| (*c, model.vectorize(text)))
        .collect();

    let n = model.ids.len();
    let mut w = vec![0f32; n * k];
    let mut b = vec![0f32; k];
    let mut order: Vec<usize> = (0..data.len()).collect();
    let mut rng = fastrand::Rng::with_seed(o.seed);
    let mut scores = vec![0f32; k];
    for epoch in 0..o.epochs {
        rng.shuffle(&mut order);
        let lr = o.learning_rate / (1.0 + epoch as f32 * 0.2);
        for &i in &order {
            let (y, x) = &data[i];
            scores.copy_from_slice(&b);
            for (row, v) in x {
                for (s, wi) in scores.iter_mut().zip(&w[row * k..(row + 1) * k]) {
                    *s += v * wi;
                }
            }
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            for (c, s) in scores.iter_mut().enumerate() {
                *s /= sum;
                if c == *y {
                    *s -= 1.0;
                }
            }
            for (bc, g) in b.iter_mut().zip(&scores) {
                *bc -= lr * g;
            }
            for (row, v) in x {
                for (wi, g) in w[row * k..(row + 1) * k].iter_mut().zip(&scores) {
                    *wi -= lr * (g * v + o.l2 * *wi);
                }
            }
        }
    }

    let max = w.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    model.scale = max / 127.0;
    model.weights = w
        .iter()
        .map(|x| (x / model.scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    model.bias = b;
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_small_problem() {
        let mut ex = Vec::new();
        for t in [
            "cancel my order",
            "please cancel it",
            "i want to cancel",
            "cancel order now",
        ] {
            ex.push((Intent::CancelOrder, t.to_string()));
        }
        for t in ["hello there", "hi", "hey hello", "hello bot"] {
            ex.push((Intent::Greet, t.to_string()));
        }
        let m = train(
            &ex,
            &Options {
                min_df: 1,
                ..Options::default()
            },
        );
        assert_eq!(
            m.predict("can you cancel my order")[0].0,
            Intent::CancelOrder
        );
        assert_eq!(m.predict("hello!")[0].0, Intent::Greet);
        let back = IntentModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.predict("cancel")[0].0, Intent::CancelOrder);
    }
}
