//! What a loaded model keeps in memory: with packed weights, the mapped model file holds no
//! pages once loading is done, so the weights are resident once.

use crate::common::*;
use engine::forward::{Engine, Model};
use std::path::Path;

/// Resident KiB of this process's mappings of `path`, from /proc/self/smaps.
fn mapped_kib(path: &Path) -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let name = path.to_str().unwrap();
    let (mut inside, mut kib, mut maps) = (false, 0, 0);
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            inside = line.ends_with(name);
            maps += usize::from(inside);
        } else if inside && first == "Rss:" {
            kib += f.next().unwrap().parse::<u64>().unwrap();
        }
    }
    assert_eq!(
        maps, 1,
        "{name} should be mapped once while the model is loaded"
    );
    kib
}

#[test]
fn a_packed_model_leaves_no_page_of_its_file_resident() {
    let isa = engine::kernels::Isa::select().unwrap();
    assert!(
        isa.packs(),
        "every machine we test on packs ({isa:?} does not)"
    );
    // Tied (SmolLM2: the embedding is the packed output matrix) and untied (the synthetic
    // Qwen2, whose embedding rows are read from the map).
    for src in [smollm2(), tiny_qwen2().to_path_buf()] {
        // A copy of our own, so that no other test's mapping of the file is counted.
        let path = tempdir("resident").join(src.file_name().unwrap());
        std::fs::copy(&src, &path).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let g = engine::gguf::read(&mut f).unwrap();
        let mut m = Model::load_with(g, &mut f, 64, Engine::Own).unwrap();
        assert_eq!(mapped_kib(&path), 0, "{} after load", src.display());
        // An untied model pages its embedding rows back in as tokens come; a tied one does not.
        m.forward(&[1, 2, 3], 0).unwrap();
        let after = mapped_kib(&path);
        if path.to_str().unwrap().contains("SmolLM2") {
            assert_eq!(after, 0, "SmolLM2 after a forward pass");
        } else {
            assert!(
                after > 0,
                "the untied model's embedding rows are read from the map"
            );
        }
        drop(m);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}

/// This process's anonymous resident KiB (heap, stacks, packed weights, KV caches).
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const CHILD: &str = "IEXEC_LLM_MEMORY_TEST_CHILD";

/// A model holds the KV cache of the positions it has reached, not of its whole context,
/// and a prompt's scratch goes back to the kernel when the prompt is done. Measured in a
/// process of its own (this test run again alone), since other tests' memory would count.
#[test]
fn memory_grows_with_the_positions_reached_not_the_context_or_the_prompt_scratch() {
    if std::env::var_os(CHILD).is_none() {
        let me = std::env::current_exe().unwrap();
        let out = std::process::Command::new(me)
            .args([
                "--exact",
                "memory::memory_grows_with_the_positions_reached_not_the_context_or_the_prompt_scratch",
                "--test-threads",
                "1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "the measuring process failed:\n{text}"
        );
        assert!(
            text.contains("1 passed"),
            "the test did not run alone:\n{text}"
        );
        return;
    }
    let path = smollm2();
    let size_kib = std::fs::metadata(&path).unwrap().len() / 1024;
    let mut f = std::fs::File::open(&path).unwrap();
    let g = engine::gguf::read(&mut f).unwrap();
    // 2,048 positions: filled in at load, the cache would be 45 MiB.
    let context = 2048;
    let mut m = Model::load_with(g, &mut f, context, Engine::Own).unwrap();
    let hp = &m.hparams;
    let kv_kib_per_pos = (hp.n_layer * hp.n_head_kv * (hp.n_embd / hp.n_head) * 2 * 2) as u64;
    let kv_kib_per_pos = kv_kib_per_pos.div_ceil(1024);
    assert!(kv_kib_per_pos * context as u64 > 40 * 1024);
    let loaded = rss_anon_kib();
    // The packed weights are a little smaller than the file; threads, tables and heap less
    // than 8 MiB.
    assert!(
        loaded <= size_kib + 8 * 1024,
        "after load {loaded} KiB anonymous, the file is {size_kib} KiB: the KV cache for the \
         context is resident before any position is reached"
    );
    let prompt: Vec<u32> = (0..128).map(|i| 1 + i * 7).collect();
    m.forward(&prompt, 0).unwrap();
    let after = rss_anon_kib();
    let cache = kv_kib_per_pos * prompt.len() as u64;
    // The cache of 128 positions, and no more than 2 MiB beside it (measured: 1.1 MiB; with
    // the prompt's scratch kept, 4.0 MiB).
    assert!(
        after <= loaded + cache + 2048,
        "after a 128-token prompt {after} KiB anonymous, {loaded} KiB after load: more than \
         the {cache} KiB of cache those positions fill, plus 2 MiB"
    );
}
