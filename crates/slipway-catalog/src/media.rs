//! Uploaded images: decoded under limits (so a decompression bomb fails before it
//! allocates), checked, and re-encoded, so the store only ever serves images it made.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits, imageops::FilterType};
use sha2::{Digest as _, Sha256};
use slipway_db::MediaRecord;

use crate::CatalogError;

/// Largest upload accepted, before decoding.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Largest side and decoder allocation: a 20000x20000 PNG of zeros compresses to a few
/// kilobytes but would need 1.6 GB to decode.
const MAX_SIDE: u32 = 8192;
const MAX_DECODE_ALLOC: u64 = 128 * 1024 * 1024;

/// Logos are square, at least this big, and stored at this size.
pub const LOGO_SIDE: u32 = 512;
const SCREENSHOT_MIN_WIDTH: u32 = 320;
const SCREENSHOT_MAX_WIDTH: u32 = 1600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    Logo,
    Screenshot,
}

impl MediaKind {
    pub fn parse(s: &str) -> Option<MediaKind> {
        match s {
            "logo" => Some(MediaKind::Logo),
            "screenshot" => Some(MediaKind::Screenshot),
            _ => None,
        }
    }
}

/// Decodes, checks and re-encodes an uploaded image. CPU-heavy: call it off the async
/// threads.
pub fn process(kind: MediaKind, bytes: &[u8]) -> Result<MediaRecord, CatalogError> {
    let refuse = |m: String| CatalogError::Invalid(format!("{}: {m}", if kind == MediaKind::Logo { "logo" } else { "screenshot" }));
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(refuse(format!(
            "is {}; at most {} are accepted",
            slipway_types::human_bytes(bytes.len() as u64),
            slipway_types::human_bytes(MAX_UPLOAD_BYTES as u64)
        )));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| refuse(format!("cannot be read: {e}")))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        _ => return Err(refuse("is not a PNG, JPEG or WebP image".into())),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let too_large = || refuse(format!("is too large to decode: at most {MAX_SIDE}x{MAX_SIDE} pixels"));
    let (width, height) = reader.into_dimensions().map_err(|e| match e {
        image::ImageError::Limits(_) => too_large(),
        e => refuse(format!("cannot be decoded: {e}")),
    })?;
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(too_large());
    }
    let image = decode(bytes).map_err(|e| refuse(format!("cannot be decoded: {e}")))?;
    let (image, format) = match kind {
        MediaKind::Logo => {
            if width != height {
                return Err(refuse(format!("must be square; this one is {width}x{height}")));
            }
            if width < LOGO_SIDE {
                return Err(refuse(format!("must be at least {LOGO_SIDE}x{LOGO_SIDE}; this one is {width}x{height}")));
            }
            (image.resize_exact(LOGO_SIDE, LOGO_SIDE, FilterType::Lanczos3), ImageFormat::Png)
        }
        MediaKind::Screenshot => {
            if width < SCREENSHOT_MIN_WIDTH {
                return Err(refuse(format!("must be at least {SCREENSHOT_MIN_WIDTH} pixels wide; this one is {width}")));
            }
            let image =
                if width > SCREENSHOT_MAX_WIDTH { image.resize(SCREENSHOT_MAX_WIDTH, MAX_SIDE, FilterType::Triangle) } else { image };
            (DynamicImage::ImageRgb8(image.to_rgb8()), ImageFormat::Jpeg)
        }
    };
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).map_err(|e| CatalogError::Internal(format!("re-encoding an image: {e}")))?;
    let content = out.into_inner();
    Ok(MediaRecord {
        id: hex::encode(Sha256::digest(&content)),
        content_type: format.to_mime_type().to_owned(),
        width: i64::from(image.width()),
        height: i64::from(image.height()),
        content,
    })
}

fn decode(bytes: &[u8]) -> image::ImageResult<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader.decode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::new_rgb8(width, height);
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn logos_must_be_square_and_big_enough() {
        let logo = process(MediaKind::Logo, &png(1024, 1024)).unwrap();
        assert_eq!((logo.width, logo.height, logo.content_type.as_str()), (512, 512, "image/png"));
        assert!(process(MediaKind::Logo, &png(600, 500)).unwrap_err().to_string().contains("square"));
        assert!(process(MediaKind::Logo, &png(256, 256)).unwrap_err().to_string().contains("at least 512x512"));
        assert!(process(MediaKind::Logo, b"GIF89a not really").is_err());
        assert!(process(MediaKind::Logo, b"<svg onload=alert(1)>").unwrap_err().to_string().contains("not a PNG"));
    }

    #[test]
    fn a_decompression_bomb_is_refused_before_decoding() {
        // 20000x20000 pixels of zeros: tiny compressed, 1.2 GB decoded.
        let mut encoded = Vec::new();
        {
            let mut encoder = png_encoder(&mut encoded, 20_000, 20_000);
            let row = vec![0u8; 20_000];
            let mut writer = encoder.stream_writer().unwrap();
            for _ in 0..20_000 {
                std::io::Write::write_all(&mut writer, &row).unwrap();
            }
            writer.finish().unwrap();
            encoder.finish().unwrap();
        }
        assert!(encoded.len() < MAX_UPLOAD_BYTES, "bomb is {} bytes", encoded.len());
        let err = process(MediaKind::Logo, &encoded).unwrap_err().to_string();
        assert!(err.contains("too large to decode"), "{err}");
    }

    fn png_encoder(out: &mut Vec<u8>, width: u32, height: u32) -> png::Writer<&mut Vec<u8>> {
        let mut encoder = png::Encoder::new(out, width, height);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        encoder.write_header().unwrap()
    }
}
