// Local capture: camera, microphone, screen. Failures come back as Chinese sentences a
// teacher can act on, never as exceptions the page has to understand.

const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

const REASONS = {
  NotAllowedError: '浏览器未允许使用{what}。请点击地址栏左侧的图标，允许使用{what}后刷新页面。',
  NotFoundError: '没有找到{what}。请检查{what}是否已连接。',
  NotReadableError: '{what}正被其他程序占用。请关闭其他使用{what}的软件后刷新页面。',
  OverconstrainedError: '{what}不支持所需的画面尺寸。',
  SecurityError: '浏览器出于安全原因禁止使用{what}（请使用 https 链接）。',
};

function explain(err, what) {
  const text = REASONS[err?.name] || '无法打开{what}。';
  return text.replaceAll('{what}', what);
}

// Camera and microphone, each optional: {camera, mic, problems: [Chinese text]}.
// One request first (one permission prompt); if it fails, each device alone, so a broken
// camera does not silence the teacher.
export async function openCameraAndMic({ width, height, frameRate }) {
  const video = { width: { ideal: width }, height: { ideal: height }, frameRate: { ideal: frameRate } };
  const result = { camera: null, mic: null, problems: [] };
  if (!navigator.mediaDevices?.getUserMedia) {
    result.problems.push('此浏览器不能使用摄像头和麦克风，请使用新版 Chrome、Edge 或 360 浏览器（极速模式）。');
    return result;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video, audio: AUDIO });
    result.camera = stream.getVideoTracks()[0] || null;
    result.mic = stream.getAudioTracks()[0] || null;
    return result;
  } catch {
    // fall through: try each device on its own
  }
  try {
    result.camera = (await navigator.mediaDevices.getUserMedia({ video })).getVideoTracks()[0];
  } catch (err) {
    result.problems.push(explain(err, '摄像头'));
  }
  try {
    result.mic = (await navigator.mediaDevices.getUserMedia({ audio: AUDIO })).getAudioTracks()[0];
  } catch (err) {
    result.problems.push(explain(err, '麦克风'));
  }
  return result;
}

// The screen (or a window) for slides. Needs a click: browsers refuse it otherwise.
export async function openScreen() {
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({
      video: { frameRate: { ideal: 15, max: 30 } },
      audio: false,
    });
    const track = stream.getVideoTracks()[0];
    track.contentHint = 'detail'; // text must stay sharp; motion may suffer
    return { track, problem: null };
  } catch (err) {
    if (err?.name === 'NotAllowedError') return { track: null, problem: null }; // cancelled
    return { track: null, problem: explain(err, '屏幕共享') };
  }
}

// The teacher's camera as separate layer tracks (the SFU cannot use browser simulcast): the
// camera itself and clones scaled down by the browser, each capped so a slow classroom gets
// a small layer instead of a frozen big one. Bitrates match media/policy.py.
export const CAMERA_LAYERS = [
  { name: 'h', width: 1280, height: 720, maxBitrate: 1200000 },
  { name: 'm', width: 640, height: 360, maxBitrate: 400000 },
  { name: 'l', width: 320, height: 180, maxBitrate: 120000, maxFramerate: 15 },
];

// {tracks: {'camera/h': track, ...}, encodings: {'camera/h': [{maxBitrate}], ...}}.
// count 1 publishes the plain camera (the server then makes the lower layers itself).
export async function cameraLayers(camera, count = 3) {
  if (count <= 1) return { tracks: { camera }, encodings: {} };
  const tracks = {};
  const encodings = {};
  for (const [i, layer] of CAMERA_LAYERS.slice(0, count).entries()) {
    const track = i === 0 ? camera : camera.clone();
    if (i > 0) {
      try {
        await track.applyConstraints({ width: layer.width, height: layer.height });
      } catch {
        track.stop(); // a camera that cannot scale: fewer layers, the server fills in
        continue;
      }
    }
    const encoding = { maxBitrate: layer.maxBitrate };
    if (layer.maxFramerate) encoding.maxFramerate = layer.maxFramerate;
    tracks[`camera/${layer.name}`] = track;
    encodings[`camera/${layer.name}`] = [encoding];
  }
  if (Object.keys(tracks).length < 2) return { tracks: { camera }, encodings: {} };
  return { tracks, encodings };
}
