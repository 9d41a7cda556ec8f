//! Every WGSL file parses and validates with naga, so a broken shader fails before any GPU run.

use reddiff::shaders::{ALL, PRELUDES};

#[test]
fn every_shader_parses_and_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/wgsl");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("wgsl/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = ALL.iter().map(|s| s.name).chain(PRELUDES.iter().copied()).map(|n| format!("{n}.wgsl")).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "every wgsl/ file must be listed in src/shaders.rs");
    for p in PRELUDES {
        let text = std::fs::read_to_string(format!("{dir}/{p}.wgsl")).expect("prelude readable");
        assert!(ALL.iter().any(|s| s.source.starts_with(&text)), "{p}.wgsl is prepended to no shader");
    }
    for s in ALL {
        let module = naga::front::wgsl::parse_str(s.source).unwrap_or_else(|e| panic!("{}.wgsl: {}", s.name, e.emit_to_string(s.source)));
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        v.validate(&module).unwrap_or_else(|e| panic!("{}.wgsl: {:?}", s.name, e));
        assert!(!module.entry_points.is_empty(), "{}.wgsl has no entry point", s.name);
    }
}

/// Every shader also translates to SPIR-V (what wgpu hands a Vulkan driver), override constants at their
/// defaults — including the cooperative-matrix kernel, which no CI adapter can run. With `SPIRV_OUT` set,
/// the modules are written there (for `spirv-val`).
#[test]
fn every_shader_translates_to_spirv() {
    let out = std::env::var_os("SPIRV_OUT").map(std::path::PathBuf::from);
    for s in ALL {
        let module = naga::front::wgsl::parse_str(s.source).unwrap_or_else(|e| panic!("{}.wgsl: {e}", s.name));
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}.wgsl: {e:?}", s.name));
        let (module, info) = naga::back::pipeline_constants::process_overrides(&module, &info, None, &Default::default())
            .unwrap_or_else(|e| panic!("{}.wgsl: overrides: {e:?}", s.name));
        let opts = naga::back::spv::Options { lang_version: (1, 4), ..Default::default() };
        let words = naga::back::spv::write_vec(&module, &info, &opts, None).unwrap_or_else(|e| panic!("{}.wgsl: SPIR-V: {e}", s.name));
        assert!(words.len() > 5, "{}.wgsl: empty SPIR-V", s.name);
        if let Some(dir) = &out {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("{}.spv", s.name)), bytes).expect("write SPIR-V");
        }
    }
}
