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
