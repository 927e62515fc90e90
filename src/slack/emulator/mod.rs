// TEMPORARY SHIM until the emulator lands (helper is writing it).
#[derive(Clone, Default)]
pub struct EmulatorConfig { pub bot_token: String }
#[derive(Clone)]
pub struct Emulator;
pub struct EmulatedUser;
impl EmulatedUser { pub fn new(_id: &str, _tz: &str) -> Self { EmulatedUser } }
impl Emulator {
    pub async fn start(_c: EmulatorConfig) -> std::io::Result<Emulator> { Ok(Emulator) }
    pub fn base_url(&self) -> String { String::new() }
    pub fn add_user(&self, _u: EmulatedUser) {}
    pub async fn shutdown(self) {}
}
impl Emulator { pub fn add_channel(&self, _c: &str, _n: &str, _m: bool) {} }
