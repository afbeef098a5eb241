//! WASI probe: a `wasm32-wasip1` guest that reaches the kernel's WASI preview1 shim through
//! std (`println!`, `eprint!`, `std::thread::sleep`, `std::time`, `std::process::exit`,
//! `panic!`, a `HashMap`'s random keys) and through the raw imports with any arguments, so
//! tests can check every WASI function and its errnos from a real guest. Commands (the request
//! body): `print TEXT`, `eprint TEXT` (no newline), `random N` (N bytes, hex), `hashmap`,
//! `random-at PTR LEN`, `clock ID`, `clock-at PTR`, `now`, `sleep MS`, `yield`, `env`,
//! `exit CODE`, `panic TEXT`, `write FD TEXT`, `write-iovs PTR LEN`, `poll-none`, `poll-fd`,
//! `poll-abs NANOS`. Raw calls answer with their errno first.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "a guest's clock and HashMap are what the WASI shim serves, deterministically"
)]
use hyperkernel_guest::{self as hk, Guest, Message};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[link(wasm_import_module = "wasi_snapshot_preview1")]
unsafe extern "C" {
    #[link_name = "random_get"]
    fn wasi_random_get(buf: u32, len: u32) -> i32;
    #[link_name = "clock_time_get"]
    fn wasi_clock_time_get(id: u32, precision: u64, time: u32) -> i32;
    #[link_name = "fd_write"]
    fn wasi_fd_write(fd: u32, iovs: u32, iovs_len: u32, nwritten: u32) -> i32;
    #[link_name = "poll_oneoff"]
    fn wasi_poll_oneoff(subs: u32, events: u32, count: u32, nevents: u32) -> i32;
}

fn address_of<T>(value: &mut T) -> u32 {
    value as *mut T as usize as u32
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn number(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

fn random(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    let errno = unsafe { wasi_random_get(bytes.as_mut_ptr() as usize as u32, len as u32) };
    format!("{errno} {}", hex(&bytes))
}

fn clock(id: u32) -> String {
    let mut time = 0u64;
    let errno = unsafe { wasi_clock_time_get(id, 1, address_of(&mut time)) };
    format!("{errno} {time}")
}

fn write(fd: u32, text: &str) -> String {
    let mut iov = [text.as_ptr() as usize as u32, text.len() as u32];
    let mut written = 0u32;
    let errno = unsafe { wasi_fd_write(fd, address_of(&mut iov), 1, address_of(&mut written)) };
    format!("{errno} {written}")
}

/// A `poll_oneoff` with one subscription of `tag` (0 clock, 1 fd_read); a clock waits
/// `timeout` nanoseconds, or until that instant when `absolute`.
fn poll(tag: u8, timeout: u64, absolute: bool, count: u32) -> String {
    let mut sub = [0u8; 48];
    sub[..8].copy_from_slice(&7u64.to_le_bytes());
    sub[8] = tag;
    sub[24..32].copy_from_slice(&timeout.to_le_bytes());
    sub[40] = u8::from(absolute);
    let mut event = [0u8; 32];
    let mut nevents = 0u32;
    let errno = unsafe {
        wasi_poll_oneoff(
            address_of(&mut sub),
            address_of(&mut event),
            count,
            address_of(&mut nevents),
        )
    };
    let userdata = u64::from_le_bytes(event[..8].try_into().unwrap_or([0; 8]));
    let error = u16::from_le_bytes([event[8], event[9]]);
    format!("{errno} {nevents} {userdata} {error} {}", event[10])
}

fn run(command: &str, args: &str) -> String {
    let mut split = args.split(' ');
    let mut next = || number(split.next().unwrap_or("0"));
    match command {
        "print" => {
            println!("{args}");
            "ok".into()
        }
        "eprint" => {
            eprint!("{args}");
            "ok".into()
        }
        "random" => random(next() as usize),
        "hashmap" => {
            let mut map = std::collections::HashMap::new();
            map.insert(1, 2);
            format!("{:?}", map.hasher())
        }
        "random-at" => {
            let (ptr, len) = (next() as u32, next() as u32);
            unsafe { wasi_random_get(ptr, len) }.to_string()
        }
        "clock" => clock(next() as u32),
        "clock-at" => unsafe { wasi_clock_time_get(1, 1, next() as u32) }.to_string(),
        "now" => {
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let instant = Instant::now();
            format!("{} {:?}", since.as_nanos(), instant.elapsed())
        }
        "sleep" => {
            let before = Instant::now();
            std::thread::sleep(Duration::from_millis(next()));
            format!("slept {}", before.elapsed().as_nanos())
        }
        "yield" => {
            std::thread::yield_now();
            "yielded".into()
        }
        "env" => std::env::vars().count().to_string(),
        "exit" => std::process::exit(next() as i32),
        "panic" => panic!("{args}"),
        "write" => {
            let (fd, text) = args.split_once(' ').unwrap_or((args, ""));
            write(number(fd) as u32, text)
        }
        "write-iovs" => {
            let (ptr, len) = (next() as u32, next() as u32);
            let mut written = 0u32;
            unsafe { wasi_fd_write(1, ptr, len, address_of(&mut written)) }.to_string()
        }
        "poll-none" => poll(0, 0, false, 0),
        "poll-fd" => poll(1, 0, false, 1),
        "poll-abs" => poll(0, next(), true, 1),
        _ => "unknown command".into(),
    }
}

struct WasiProbe;

impl Guest for WasiProbe {
    fn init(_our: String) {
        loop {
            let Ok((_source, Message::Request(request))) = hk::receive() else {
                continue;
            };
            let text = String::from_utf8_lossy(&request.body).into_owned();
            let (command, args) = text.split_once(' ').unwrap_or((&text, ""));
            hk::respond(run(command, args));
        }
    }
}

hk::export_process!(WasiProbe);
