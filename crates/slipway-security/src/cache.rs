//! The per-layer cache: a layer's analysis depends only on its bytes and the analyzer, so
//! it is kept by (layer digest, analyzer version) and a rescan of known layers costs only
//! the matching. (`slipway scan` keeps its own on disk: `slipway_scanner::scan::DirCache`.)

use slipway_db::ScanningDb;
use slipway_scanner::analyzer::LayerReport;

use crate::ScanningError;

/// Reports stored in `layer_reports` as zstd-compressed JSON: path-hash lists compress
/// well, and every replica shares the table.
#[derive(Clone)]
pub struct DbLayerCache {
    db: ScanningDb,
}

impl DbLayerCache {
    pub fn new(db: ScanningDb) -> DbLayerCache {
        DbLayerCache { db }
    }

    pub async fn get(&self, layer: &str, analyzer_version: u32) -> Result<Option<LayerReport>, ScanningError> {
        let Some(bytes) = self.db.layer_report(layer, i64::from(analyzer_version)).await? else {
            return Ok(None);
        };
        let json = zstd::decode_all(bytes.as_slice()).map_err(|e| ScanningError::Internal(format!("cached report of {layer}: {e}")))?;
        Ok(Some(serde_json::from_slice(&json)?))
    }

    pub async fn put(&self, layer: &str, analyzer_version: u32, report: &LayerReport) -> Result<(), ScanningError> {
        let json = serde_json::to_vec(report)?;
        let bytes = zstd::encode_all(json.as_slice(), 3).map_err(|e| ScanningError::Internal(format!("compressing a report: {e}")))?;
        self.db.put_layer_report(layer, i64::from(analyzer_version), &bytes).await?;
        Ok(())
    }
}
