// Parses each playlist named on the command line with hls-parser in strict
// mode; exits non-zero naming the first one it rejects.
const fs = require('fs');
const HLS = require('hls-parser');

HLS.setOptions({ strictMode: true });
let checked = 0;
for (const path of process.argv.slice(2)) {
  const text = fs.readFileSync(path, 'utf8');
  try {
    const playlist = HLS.parse(text);
    if (playlist.isMasterPlaylist) {
      throw new Error('a master playlist where a media playlist was expected');
    }
    if (playlist.segments.length === 0) {
      throw new Error('no segments');
    }
  } catch (err) {
    console.error(`${path}: ${err.message}\n${text}`);
    process.exit(1);
  }
  checked += 1;
}
console.log(`${checked} playlists accepted`);
