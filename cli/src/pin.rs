//! `opkey pin KEY`: the Rolling PIN to type on the machine's keypad now (or a personal
//! Static PIN), from the offline store on the server-corrected clock; `--watch` counts
//! down and rolls over to the next PIN until Ctrl-C.

use crate::error::CliError;
use crate::home::Home;
use crate::output::{print_json, rfc3339};
use opkey_core::{AccessType, OpKey, PinError, PinListener, PinView, StaticPinView};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, mpsc};
use std::time::Duration;

pub async fn run(home: &Home, key_id: &str, watch: bool, json: bool) -> Result<(), CliError> {
    let core = Arc::new(home.open_core()?);
    match core.pin(key_id) {
        Ok(view) if !watch => {
            show(&view, json);
            Ok(())
        }
        Ok(_) => watch_pins(&core, key_id, json).await,
        Err(PinError::NotRollingPin {
            access_type: AccessType::StaticPin,
            ..
        }) => {
            let view = core.static_pin(key_id)?;
            show_static(&view, json);
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn show(view: &PinView, json: bool) {
    if json {
        print_json(view);
        return;
    }
    println!(
        "{}  key {} — valid {} s more (until {}; keypads accept it until {})",
        group(&view.pin),
        view.key_id,
        view.seconds_left,
        rfc3339(view.valid_until),
        rfc3339(view.accepted_until)
    );
    if let Some(warning) = &view.clock_warning {
        eprintln!("warning: {warning}");
    }
}

fn show_static(view: &StaticPinView, json: bool) {
    if json {
        print_json(&json!({
            "key_id": view.key_id,
            "kind": "static-pin",
            "pin": view.pin,
            "valid_from": rfc3339(view.valid_from),
            "valid_until": rfc3339(view.valid_to),
        }));
    } else {
        println!(
            "{}  key {} — Static PIN, valid until {}",
            view.pin,
            view.key_id,
            rfc3339(view.valid_to)
        );
    }
}

/// `042 123 456`: the slot, then the code in threes, easier to read off a screen.
fn group(pin: &str) -> String {
    let (slot, code) = pin.split_at(3.min(pin.len()));
    let mut out = slot.to_owned();
    for chunk in code.as_bytes().chunks(3) {
        out.push(' ');
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out
}

enum Heard {
    Pin(PinView),
    Stopped(PinError),
}

struct Forward(mpsc::Sender<Heard>);

impl PinListener for Forward {
    fn on_pin(&self, pin: PinView) {
        let _ = self.0.send(Heard::Pin(pin));
    }
    fn on_stopped(&self, error: PinError) {
        let _ = self.0.send(Heard::Stopped(error));
    }
}

async fn watch_pins(core: &Arc<OpKey>, key_id: &str, json: bool) -> Result<(), CliError> {
    let (tx, rx) = mpsc::channel();
    let watch = core.watch_pin(key_id, Arc::new(Forward(tx)))?;
    let live = !json && std::io::stdout().is_terminal();
    let mut current: Option<PinView> = None;
    let mut ticker = tokio::time::interval(Duration::from_millis(250));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut last_second = None;
    let outcome = loop {
        tokio::select! {
            _ = &mut ctrl_c => break Ok(()),
            _ = ticker.tick() => {}
        }
        while let Ok(heard) = rx.try_recv() {
            match heard {
                Heard::Pin(view) => {
                    if json {
                        println!("{}", serde_json::to_string(&view).unwrap_or_default());
                    } else if !live {
                        show(&view, false);
                    } else if let Some(warning) = &view.clock_warning {
                        eprintln!("\r\x1b[2Kwarning: {warning}");
                    }
                    last_second = None;
                    current = Some(view);
                }
                Heard::Stopped(e) => {
                    if live {
                        println!();
                    }
                    watch.cancel();
                    return Err(e.into());
                }
            }
        }
        let _ = std::io::stdout().flush();
        // Redraw once a second: the countdown to the next PIN.
        if let (true, Some(view)) = (live, &current) {
            let left = (view.valid_until - core.now()).whole_seconds().max(0);
            if last_second != Some(left) {
                last_second = Some(left);
                print!(
                    "\r\x1b[2K{}  key {} — next PIN in {left:>3} s",
                    group(&view.pin),
                    view.key_id
                );
                let _ = std::io::stdout().flush();
            }
        }
    };
    watch.cancel();
    if live {
        println!();
    }
    outcome
}
