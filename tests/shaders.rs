//! Every WGSL file parses and validates with naga, so a broken shader fails before any GPU run.

use reddiff::shaders::ALL;

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
    let mut embedded: Vec<String> = ALL.iter().map(|s| format!("{}.wgsl", s.name)).collect();
    embedded.sort();
    assert_eq!(on_disk, embedded, "every wgsl/ file must be listed in src/shaders.rs");
    for s in ALL {
        let module = naga::front::wgsl::parse_str(s.source).unwrap_or_else(|e| panic!("{}.wgsl: {}", s.name, e.emit_to_string(s.source)));
        let mut v = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::all());
        v.validate(&module).unwrap_or_else(|e| panic!("{}.wgsl: {:?}", s.name, e));
        assert!(!module.entry_points.is_empty(), "{}.wgsl has no entry point", s.name);
    }
}
