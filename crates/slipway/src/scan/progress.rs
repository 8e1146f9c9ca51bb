//! Progress bars on stderr, one per layer, while layers are read.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use slipway_scanner::image::Image;
use slipway_scanner::scan::LayerEvent;

pub struct Bars {
    multi: MultiProgress,
    labels: Vec<String>,
    bars: Mutex<HashMap<usize, ProgressBar>>,
}

impl Bars {
    pub fn new(image: &Image) -> Bars {
        let count = image.layers.len();
        let labels = image
            .layers
            .iter()
            .enumerate()
            .map(|(index, layer)| format!("layer {}/{count} {}", index + 1, short(&layer.digest.to_string())))
            .collect();
        Bars { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()), labels, bars: Mutex::new(HashMap::new()) }
    }

    pub fn event(&self, layer: usize, event: LayerEvent) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match event {
            LayerEvent::Cached => {
                let bar = self.multi.add(ProgressBar::new(0).with_style(style("{prefix} {msg}")));
                bar.set_prefix(self.labels[layer].clone());
                bar.finish_with_message("cached");
            }
            LayerEvent::Started { size } => {
                let bar = match size {
                    Some(size) => {
                        ProgressBar::new(size).with_style(style("{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}"))
                    }
                    None => ProgressBar::new_spinner().with_style(style("{prefix} {spinner} {bytes} {msg}")),
                };
                let bar = self.multi.add(bar);
                bar.set_prefix(self.labels[layer].clone());
                bars.insert(layer, bar);
            }
            LayerEvent::Read { bytes } => {
                if let Some(bar) = bars.get(&layer) {
                    bar.set_position(bytes);
                }
            }
            LayerEvent::Finished => {
                if let Some(bar) = bars.remove(&layer) {
                    bar.finish_with_message("done");
                }
            }
            LayerEvent::Failed { .. } => {
                if let Some(bar) = bars.remove(&layer) {
                    bar.abandon_with_message("failed");
                }
            }
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("a valid progress template").progress_chars("=> ")
}

/// `sha256:0123456789ab`: enough of a digest to tell layers apart.
pub fn short(digest: &str) -> &str {
    let end = digest.find(':').map_or(12, |colon| colon + 13);
    &digest[..end.min(digest.len())]
}
