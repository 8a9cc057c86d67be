//! The built-in processor for images: dimensions and a thumbnail, decoded with explicit
//! limits on width, height and memory so a decompression bomb (a few kilobytes that
//! claim a gigapixel) is rejected instead of exhausting the worker. Decoding runs on the
//! blocking pool: it is CPU work that would stall the async workers.

use super::{Content, FileFacts, ProcessError, Processor, Verdict};
use crate::model::ImageFacts;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use image::{ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// Decoder limits and thumbnail size (from `uploads.*`).
#[derive(Debug, Clone)]
pub struct ImageProcessor {
    pub max_bytes: u64,
    pub max_dimension: u32,
    pub max_alloc: u64,
    pub thumbnail_size: u32,
}

impl ImageProcessor {
    pub fn from_settings(s: &keel_config::UploadsSettings) -> Self {
        Self {
            max_bytes: s.image_max_bytes,
            max_dimension: s.image_max_dimension,
            max_alloc: s.image_max_alloc_bytes,
            thumbnail_size: s.thumbnail_size,
        }
    }
}

/// The formats decoded (the `image` crate is built with these only).
fn format_of(media_type: &str) -> Option<ImageFormat> {
    match media_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

impl Processor for ImageProcessor {
    fn name(&self) -> &'static str {
        "image"
    }

    /// Decodable formats up to `image_max_bytes`; bigger images are kept undecoded.
    fn accepts(&self, file: &FileFacts) -> bool {
        format_of(&file.detected_type).is_some() && file.size <= self.max_bytes
    }

    fn process<'a>(
        &'a self,
        file: &'a FileFacts,
        content: &'a Content<'a>,
    ) -> BoxFuture<'a, Result<Verdict, ProcessError>> {
        async move {
            let Some(format) = format_of(&file.detected_type) else {
                return Ok(Verdict::Accept(None));
            };
            let bytes = content.read_all().await?;
            let this = self.clone();
            let decoded = tokio::task::spawn_blocking(move || this.thumbnail(bytes, format))
                .await
                .map_err(|e| ProcessError::Transient(e.into()))?;
            let (width, height, thumbnail) = match decoded {
                Ok(done) => done,
                Err(reason) => return Ok(Verdict::Reject(reason)),
            };
            content.put_derived("thumbnail.png", thumbnail).await?;
            let facts = ImageFacts {
                width,
                height,
                thumbnail: true,
            };
            Ok(Verdict::Accept(Some(
                serde_json::to_value(facts).map_err(|e| ProcessError::Permanent(e.into()))?,
            )))
        }
        .boxed()
    }
}

impl ImageProcessor {
    /// Width, height and a PNG thumbnail, or why the image is refused. The header is read
    /// first: an image whose declared size is past the limits is never decoded.
    fn thumbnail(&self, bytes: Vec<u8>, format: ImageFormat) -> Result<(u32, u32, Bytes), String> {
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_dimension);
        limits.max_image_height = Some(self.max_dimension);
        limits.max_alloc = Some(self.max_alloc);
        fn reader<'a>(
            bytes: &'a [u8],
            format: ImageFormat,
            limits: &Limits,
        ) -> ImageReader<Cursor<&'a [u8]>> {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
            reader.limits(limits.clone());
            reader
        }
        let (width, height) = reader(&bytes, format, &limits)
            .into_dimensions()
            .map_err(|e| refusal(&e, self))?;
        if width > self.max_dimension || height > self.max_dimension {
            return Err(format!(
                "the image is {width}×{height} pixels; the limit is {0}×{0}",
                self.max_dimension
            ));
        }
        let image = reader(&bytes, format, &limits)
            .decode()
            .map_err(|e| refusal(&e, self))?;
        // Never enlarged: an image already small enough is its own thumbnail.
        let size = self.thumbnail_size;
        let thumb = if width <= size && height <= size {
            image
        } else {
            image.thumbnail(size, size)
        };
        let mut png = Vec::new();
        thumb
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .map_err(|e| format!("the thumbnail could not be made: {e}"))?;
        Ok((width, height, Bytes::from(png)))
    }
}

fn refusal(e: &image::ImageError, p: &ImageProcessor) -> String {
    match e {
        image::ImageError::Limits(_) => format!(
            "the image needs more than the limits allow to decode ({0}×{0} pixels, {1} MiB)",
            p.max_dimension,
            p.max_alloc / (1024 * 1024)
        ),
        other => format!("the image cannot be decoded: {other}"),
    }
}
