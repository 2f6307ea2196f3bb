fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let up = ["default".to_string()];
    let t = std::time::Instant::now();
    let raw: toml::Value = toml::from_str(&text).unwrap();
    println!("toml::Value parse: {:?}", t.elapsed());
    drop(raw);
    let t = std::time::Instant::now();
    for _ in 0..10 {
        permgate::routes::parse(&text, std::path::Path::new("r.toml"), &up).unwrap();
    }
    println!("routes::parse: {:?}", t.elapsed() / 10);
}
