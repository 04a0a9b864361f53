// Parses the playlist on stdin with hls-parser in strict mode and prints one
// JSON object: what the parser saw and the errors it found. The argument is
// the kind the playlist must be, `media` or `master`. Exits 0 whether or not
// the playlist passed; a non-zero exit means this script itself failed.
const fs = require('fs');
const HLS = require('hls-parser');

HLS.setOptions({ strictMode: true });
const expected = process.argv[2];
if (expected !== 'media' && expected !== 'master') {
  console.error(`usage: node parse-playlist.js media|master < playlist.m3u8 (got ${expected})`);
  process.exit(2);
}
const text = fs.readFileSync(0, 'utf8');
const result = {
  errors: [],
  kind: null,
  version: null,
  segments: 0,
  playlist_type: null,
  endlist: false,
  target_duration: null,
  byte_ranges: 0,
  iframes_only: false,
  maps: 0,
  variants: [],
  iframe_variants: [],
};
try {
  const playlist = HLS.parse(text);
  result.kind = playlist.isMasterPlaylist ? 'master' : 'media';
  result.version = playlist.version ?? null;
  if (playlist.isMasterPlaylist) {
    const plain = playlist.variants.filter((variant) => !variant.isIFrameOnly);
    result.variants = plain.map((variant) => variant.uri);
    result.iframe_variants = playlist.variants
      .filter((variant) => variant.isIFrameOnly)
      .map((variant) => variant.uri);
    if (result.variants.length === 0) result.errors.push('a master playlist without variants');
  } else {
    result.segments = playlist.segments.length;
    result.playlist_type = playlist.playlistType ?? null;
    result.endlist = playlist.endlist;
    result.target_duration = playlist.targetDuration ?? null;
    result.byte_ranges = playlist.segments.filter((segment) => segment.byterange).length;
    result.iframes_only = Boolean(playlist.isIFrame);
    result.maps = playlist.segments.filter((segment) => segment.map).length;
    if (result.segments === 0) result.errors.push('a media playlist without segments');
  }
  if (result.kind !== expected) {
    result.errors.push(`a ${result.kind} playlist where a ${expected} playlist was expected`);
  }
} catch (err) {
  result.errors.push(err.message);
}
console.log(JSON.stringify(result));
