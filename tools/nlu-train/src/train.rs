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

/// `classes` in the model's order: those without examples are left out.
pub fn train(classes: &[Intent], examples: &[(Intent, String)], o: &Options) -> IntentModel {
    let classes: Vec<Intent> = classes
        .iter()
        .filter(|i| examples.iter().any(|(e, _)| e == *i))
        .cloned()
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
        language: None,
        classes,
        ids,
        idf,
        bias: vec![0.0; k],
        masks: Default::default(),
        values: Default::default(),
        escapes: Default::default(),
        scale: 1.0,
        temperature: 1.0,
        rows: Default::default(),
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
    let dense: Vec<u8> = w
        .iter()
        .map(|x| (x / model.scale).round().clamp(-127.0, 127.0) as i8 as u8)
        .collect();
    model.set_weights(&dense);
    model.bias = b;
    model
}

/// What temperature calibration found on held-out examples.
pub struct Calibration {
    pub temperature: f32,
    pub accuracy: f32,
    pub loss_before: f32,
    pub loss_after: f32,
}

/// Fits on `fit`, then picks the softmax temperature that minimises the log-loss on `held`, so
/// the shipped model's probabilities mean what they say on phrasings it was not trained on.
pub fn calibrate(
    classes: &[Intent],
    fit: &[(Intent, String)],
    held: &[(Intent, String)],
    o: &Options,
) -> Calibration {
    let model = train(classes, fit, o);
    let scored: Vec<(usize, Vec<f32>)> = held
        .iter()
        .filter_map(|(intent, text)| {
            let y = model.classes.iter().position(|c| c == intent)?;
            Some((y, model.scores(text)))
        })
        .collect();
    let loss = |t: f32| -> f32 {
        let total: f32 = scored
            .iter()
            .map(|(y, s)| {
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = s.iter().map(|v| ((v - max) / t).exp()).sum();
                -(((s[*y] - max) / t) - sum.ln())
            })
            .sum();
        total / scored.len().max(1) as f32
    };
    let correct = scored
        .iter()
        .filter(|(y, s)| {
            s.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .is_some_and(|(i, _)| i == *y)
        })
        .count();
    let (mut best_t, mut best) = (1.0f32, loss(1.0));
    for step in 1..=100 {
        let t = step as f32 * 0.05;
        let l = loss(t);
        if l < best {
            (best_t, best) = (t, l);
        }
    }
    Calibration {
        temperature: best_t,
        accuracy: correct as f32 / scored.len().max(1) as f32,
        loss_before: loss(1.0),
        loss_after: best,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel() -> Intent {
        Intent::new("cancel_order")
    }

    fn greet() -> Intent {
        Intent::new("greet")
    }

    #[test]
    fn learns_a_small_problem() {
        let mut ex = Vec::new();
        for t in [
            "cancel my order",
            "please cancel it",
            "i want to cancel",
            "cancel order now",
        ] {
            ex.push((cancel(), t.to_string()));
        }
        for t in ["hello there", "hi", "hey hello", "hello bot"] {
            ex.push((greet(), t.to_string()));
        }
        let m = train(
            &[cancel(), greet()],
            &ex,
            &Options {
                min_df: 1,
                ..Options::default()
            },
        );
        assert_eq!(m.predict("can you cancel my order")[0].0, cancel());
        assert_eq!(m.predict("hello!")[0].0, greet());
        let back = IntentModel::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.predict("cancel")[0].0, cancel());
    }

    #[test]
    fn calibration_softens_a_model_that_is_wrong_on_held_out_phrasings() {
        let mut fit = Vec::new();
        for t in [
            "cancel my order",
            "cancel it",
            "i want to cancel",
            "cancel order now",
        ] {
            fit.push((cancel(), t.to_string()));
        }
        for t in ["hello there", "hi", "hey hello", "hello bot"] {
            fit.push((greet(), t.to_string()));
        }
        // Held-out phrasings half of which the fitted model gets wrong with confidence: the
        // log-loss is lower with a softer (higher) temperature.
        let held = vec![
            (cancel(), "cancel order".to_string()),
            (greet(), "hello".to_string()),
            (greet(), "cancel hello cancel".to_string()),
            (cancel(), "hello hello order".to_string()),
        ];
        let o = Options {
            min_df: 1,
            ..Options::default()
        };
        let c = calibrate(&[cancel(), greet()], &fit, &held, &o);
        assert!(c.temperature > 1.0, "{}", c.temperature);
        assert!(c.loss_after <= c.loss_before);
        assert!((0.0..=1.0).contains(&c.accuracy));
    }
}
