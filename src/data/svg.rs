//! SVG -> RGBA at any size, for the vector emoji sets (resvg).

use image::RgbaImage;
use resvg::{tiny_skia, usvg};

/// Rasterises an SVG document into a `side` x `side` square: the drawing is scaled to fit and
/// centred, so a non-square view box keeps its proportions.
pub fn render(svg: &str, side: usize) -> Option<RgbaImage> {
    let tree = usvg::Tree::from_str(svg, &usvg::Options::default()).ok()?;
    let side = side as u32;
    let mut pixmap = tiny_skia::Pixmap::new(side, side)?;
    let size = tree.size();
    let scale = side as f32 / size.width().max(size.height());
    let (dx, dy) = (
        (side as f32 - size.width() * scale) / 2.0,
        (side as f32 - size.height() * scale) / 2.0,
    );
    let transform = tiny_skia::Transform::from_scale(scale, scale).post_translate(dx, dy);
    resvg::render(&tree, transform, &mut pixmap.as_mut());
    // tiny-skia stores premultiplied alpha; undo it so compositing on white is uniform.
    let pixels = pixmap
        .pixels()
        .iter()
        .flat_map(|p| {
            let c = p.demultiply();
            [c.red(), c.green(), c.blue(), c.alpha()]
        })
        .collect();
    RgbaImage::from_raw(side, side, pixels)
}
