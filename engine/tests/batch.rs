//! Several sequences fed at once ([`Model::feed`], a batched decode step): each sequence's
//! logits are the bits it gets alone, whatever the batch's size, order or mix of prompt and
//! decode rows; a bad batch is refused before anything moves.

use crate::common::*;
use engine::forward::{Engine, Model, Sequence};
use std::fs::File;

fn load(path: &std::path::Path, engine: Engine) -> Model {
    let mut f = File::open(path).unwrap();
    let g = engine::gguf::read(&mut f).unwrap();
    Model::load_with(g, &mut f, 256, engine).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|f| f.to_bits()).collect()
}

fn argmax(v: &[f32]) -> u32 {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i as u32)
        .unwrap()
}

/// Prompts of mixed lengths inside the vocabulary.
fn prompts(vocab: usize) -> Vec<Vec<u32>> {
    let mut x = 11u64;
    [1, 3, 9, 17, 30, 2, 45, 11]
        .iter()
        .map(|&len| {
            (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((x >> 33) % vocab as u64) as u32
                })
                .collect()
        })
        .collect()
}

const STEPS: usize = 4;

/// Each prompt alone through `Model::forward`: the logits after the prompt, then after each
/// of `STEPS` greedy tokens.
fn alone(m: &mut Model, prompts: &[Vec<u32>]) -> Vec<Vec<Vec<u32>>> {
    prompts
        .iter()
        .map(|p| {
            let mut logits = m.forward(p, 0).unwrap();
            let mut out = vec![bits(&logits)];
            for s in 0..STEPS {
                logits = m.forward(&[argmax(&logits)], p.len() + s).unwrap();
                out.push(bits(&logits));
            }
            out
        })
        .collect()
}

#[test]
fn a_batched_step_gives_each_sequence_the_bits_it_gets_alone() {
    for path in [smollm2(), tiny_qwen2().to_path_buf()] {
        let mut m = load(&path, Engine::Own);
        let prompts = prompts(m.hparams.n_vocab);
        let want = alone(&mut m, &prompts);
        for b in [1, 2, 4, 8] {
            let mut seqs: Vec<Sequence> = (0..b).map(|_| m.sequence().unwrap()).collect();
            // The prompts of every sequence in one call: rows of several lengths together.
            let mut batch: Vec<(&mut Sequence, &[u32])> = seqs
                .iter_mut()
                .zip(&prompts)
                .map(|(s, p)| (s, p.as_slice()))
                .collect();
            let mut logits = m.feed(&mut batch).unwrap();
            drop(batch);
            // The step indexes both the wanted logits and the batch order.
            #[allow(clippy::needless_range_loop)]
            for step in 0..=STEPS {
                for (i, l) in logits.iter().enumerate() {
                    assert_eq!(
                        bits(l),
                        want[i][step],
                        "{}: B={b}, sequence {i}, step {step}",
                        path.display()
                    );
                }
                if step == STEPS {
                    break;
                }
                let next: Vec<[u32; 1]> = logits.iter().map(|l| [argmax(l)]).collect();
                // Odd steps feed the batch in reverse order: the order must not matter.
                let mut batch: Vec<(usize, (&mut Sequence, &[u32]))> = seqs
                    .iter_mut()
                    .zip(&next)
                    .map(|(s, t)| (s, t.as_slice()))
                    .enumerate()
                    .collect();
                if step % 2 == 1 {
                    batch.reverse();
                }
                let (order, mut batch): (Vec<usize>, Vec<_>) = batch.into_iter().unzip();
                let out = m.feed(&mut batch).unwrap();
                drop(batch);
                let mut sorted = vec![Vec::new(); b];
                for (i, l) in order.into_iter().zip(out) {
                    sorted[i] = l;
                }
                logits = sorted;
            }
            for (s, p) in seqs.iter().zip(&prompts) {
                assert_eq!(s.len(), p.len() + STEPS);
            }
        }
    }
}

#[test]
fn bad_batches_are_refused_and_leave_every_sequence_where_it_was() {
    let path = smollm2();
    let mut m = load(&path, Engine::Own);
    let prompts = prompts(m.hparams.n_vocab);
    let want = alone(&mut m, &prompts[..2]);
    let err = |r: Result<Vec<Vec<f32>>, engine::Error>| r.unwrap_err().to_string();
    let (mut a, mut b) = (m.sequence().unwrap(), m.sequence().unwrap());
    assert!(a.is_empty());

    assert!(err(m.feed(&mut [])).contains("an empty batch"));
    let e = err(m.feed(&mut [(&mut a, &prompts[0]), (&mut b, &[])]));
    assert!(e.contains("sequence 1: 0 tokens"), "{e}");
    let vocab = m.hparams.n_vocab as u32;
    let e = err(m.feed(&mut [(&mut a, &prompts[0]), (&mut b, &[1, vocab])]));
    assert!(e.contains("sequence 1: token id"), "{e}");
    assert!(e.contains("outside the vocabulary"), "{e}");
    let long = vec![1u32; m.context + 1];
    let e = err(m.feed(&mut [(&mut a, &long)]));
    assert!(e.contains("do not fit the context"), "{e}");
    // The same file loaded again is another model: its sequences are not this one's.
    let other = load(&path, Engine::Own);
    let mut foreign = other.sequence().unwrap();
    let e = err(m.feed(&mut [(&mut a, &prompts[0]), (&mut foreign, &prompts[1])]));
    assert!(e.contains("sequence 1 was made by another model"), "{e}");
    let e = err(other.feed(&mut [(&mut a, &prompts[0])]));
    assert!(e.contains("sequence 0 was made by another model"), "{e}");

    // Nothing moved: both sequences still give the bits of a first feed.
    assert!(a.is_empty() && b.is_empty() && foreign.is_empty());
    let l = m
        .feed(&mut [(&mut a, &prompts[0]), (&mut b, &prompts[1])])
        .unwrap();
    assert_eq!(bits(&l[0]), want[0][0]);
    assert_eq!(bits(&l[1]), want[1][0]);
    // A sequence filled to the context takes nothing more.
    let rest = vec![1u32; m.context - a.len()];
    m.feed(&mut [(&mut a, &rest)]).unwrap();
    assert_eq!(a.len(), m.context);
    let e = err(m.feed(&mut [(&mut a, &[1])]));
    assert!(e.contains("do not fit the context"), "{e}");

    // candle's pass keeps one sequence.
    let c = load(&path, Engine::Candle);
    let e = c.sequence().err().unwrap().to_string();
    assert!(e.contains("need our engine"), "{e}");
    assert!(err(c.feed(&mut [(&mut a, &[1])])).contains("made by another model"));
}
