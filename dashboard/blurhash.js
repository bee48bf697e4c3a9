// blurhash.js — decodes a BlurHash (https://blurha.sh, the algorithm src/media/blurhash.c
// encodes) into RGBA pixels, so an output shows its colours before the image arrives.
"use strict";

const BlurHash = (() => {
  const CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

  function decode83(s) {
    let v = 0;
    for (const c of s) {
      const d = CHARS.indexOf(c);
      if (d < 0) throw new Error("not base83");
      v = v * 83 + d;
    }
    return v;
  }

  function srgbToLinear(v) {
    const x = v / 255;
    return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
  }

  function linearToSrgb(v) {
    const x = Math.max(0, Math.min(1, v));
    return x <= 0.0031308 ? Math.round(x * 12.92 * 255 + 0.5) : Math.round((1.055 * Math.pow(x, 1 / 2.4) - 0.055) * 255 + 0.5);
  }

  function signPow(v, e) { return Math.sign(v) * Math.pow(Math.abs(v), e); }

  // Returns a Uint8ClampedArray of width*height*4, or throws on a malformed hash.
  function decode(hash, width, height, punch = 1) {
    if (typeof hash !== "string" || hash.length < 6) throw new Error("blurhash too short");
    const size = decode83(hash[0]);
    const ny = Math.floor(size / 9) + 1, nx = (size % 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) throw new Error("blurhash length mismatch");
    const maxAc = (decode83(hash[1]) + 1) / 166;
    const colors = new Array(nx * ny);
    const dc = decode83(hash.slice(2, 6));
    colors[0] = [srgbToLinear(dc >> 16), srgbToLinear((dc >> 8) & 255), srgbToLinear(dc & 255)];
    for (let i = 1; i < nx * ny; i++) {
      const v = decode83(hash.slice(4 + i * 2, 6 + i * 2));
      const q = [Math.floor(v / 361), Math.floor(v / 19) % 19, v % 19];
      colors[i] = q.map((c) => signPow((c - 9) / 9, 2) * maxAc * punch);
    }
    const px = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let r = 0, g = 0, b = 0;
        for (let j = 0; j < ny; j++) {
          const by = Math.cos((Math.PI * y * j) / height);
          for (let i = 0; i < nx; i++) {
            const basis = Math.cos((Math.PI * x * i) / width) * by;
            const c = colors[i + j * nx];
            r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
          }
        }
        const o = 4 * (x + y * width);
        px[o] = linearToSrgb(r); px[o + 1] = linearToSrgb(g); px[o + 2] = linearToSrgb(b); px[o + 3] = 255;
      }
    }
    return px;
  }

  // Paints hash onto canvas (a small bitmap; CSS stretches it smoothly). False if malformed.
  function paint(canvas, hash, w = 32, h = 32) {
    try {
      const px = decode(hash, w, h);
      canvas.width = w; canvas.height = h;
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(w, h);
      img.data.set(px);
      ctx.putImageData(img, 0, 0);
      return true;
    } catch (e) {
      return false;
    }
  }

  return { decode, paint };
})();
