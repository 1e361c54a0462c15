// presence browser page: a raw RTCPeerConnection against pipecat's SmallWebRTC signalling
// (POST/PATCH api/offer) and pipecat RTVI messages over the WebRTC data channel.
// URLs are relative to the page, so it works at "/" and mounted under a prefix (e.g. /c/{id}/).
// Plain JavaScript, no build step, no network beyond this page's own server.
//
// "Last turn latency" is the server's figure (RTVI server-message {type: "presence-turn-latency"},
// see framework/observers/latency.py): from the user's last voiced sample to the persona's first
// audio. The page keeps no clock of its own: RTVI's user-stopped-speaking comes when the turn was
// decided, after the silence the VAD waited for, and would understate the latency.
//
// Test hook: window.presence holds the page's observable state (see `state` below), and
// window.presence.send(msg) sends an interaction on the data channel, e.g.
// {message_type: "conversation", event_type: "conversation.echo", properties: {text: "Hi"}}.
"use strict";

(() => {
  const RTVI_LABEL = "rtvi-ai";
  const RTVI_VERSION = "2.2.0"; // the RTVI protocol version pipecat 1.14 speaks
  const AUDIO_INDEX = 0; // transceiver order is fixed by pipecat: audio, video
  const VIDEO_INDEX = 1;
  // Without STUN/TURN servers only host candidates are gathered, at once. With them, the offer
  // leaves after at most ICE_TRICKLE_AFTER_MS and later candidates follow by PATCH (trickle ICE):
  // an unreachable STUN server must never hold the call up for its timeout.
  const ICE_GATHER_TIMEOUT_MS = 2000;
  const ICE_TRICKLE_AFTER_MS = 250;
  const PING_INTERVAL_MS = 1000;
  const HANGUP_TIMEOUT_MS = 5000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    title: $("title"),
    status: $("status"),
    connect: $("connect"),
    mute: $("mute"),
    hangup: $("hangup"),
    personaVideo: $("persona-video"),
    personaAudio: $("persona-audio"),
    placeholder: $("placeholder"),
    selfVideo: $("self-video"),
    error: $("error"),
    latency: $("latency"),
    latencyDetail: $("latency-detail"),
    captions: $("captions"),
  };

  // Everything a test (or a curious user in the console) may want to read.
  const state = {
    state: "idle", // idle | connecting | connected | ready | disconnected | error
    pcId: null,
    botName: "presence",
    captions: [], // [{role: "user"|"bot", text, final, interrupted}]
    remoteAudio: false, // a remote audio track arrived
    remoteVideo: false, // a remote video track arrived
    remoteVideoFrames: 0, // frames of the persona's video decoded (inbound-rtp framesDecoded)
    remoteVideoRendered: 0, // frames painted by the <video> element (requestVideoFrameCallback)
    remoteVideoPackets: 0,
    remoteVideoSize: null, // [width, height] of the persona's video as received
    remoteAudioPackets: 0,
    remoteAudioEnergy: 0, // inbound totalAudioEnergy: > 0 once non-silent audio arrived
    localAudio: false,
    localVideo: false,
    micMuted: false,
    userSpeaking: false,
    botSpeaking: false,
    lastLatencyMs: null, // the last turn's voice_to_voice_ms, from the server
    lastLatency: null, // the last presence-turn-latency message's data
    latencies: [],
    errors: [],
    messages: {}, // count of RTVI messages received, by type
    interactions: [], // conversation.* events received (utterances, speaking, errors)
    // Connect timeline of the current call, ms since Connect was pressed (performance.now()):
    // offer_sent, answer, ice_connected, connected, first_frame (first persona frame painted).
    timing: {},
    connectMs: null, // offer sent -> first persona frame painted, for the current call
  };
  window.presence = state;
  // not enumerable: the JSON copy tests take of the state stays plain data
  Object.defineProperty(state, "send", {
    value: (msg) => {
      if (!dc || dc.readyState !== "open") return false;
      // pipecat's SmallWebRTC connection reads msg.type on every data-channel message
      dc.send(JSON.stringify({ type: msg.message_type || "app", ...msg }));
      return true;
    },
  });

  let pc = null;
  let dc = null;
  let localStream = null;
  let pingTimer = null;
  let statsTimer = null;
  let pendingCandidates = [];
  let offerSent = false;
  let hangupTimer = null;
  let sawUserInput = false;
  let sawBotOutput = false;
  let iceServers = [];
  let connectStartedAt = 0;

  // ---- connect timeline ---------------------------------------------------------------------

  function mark(name) {
    if (state.timing[name] === undefined) state.timing[name] = Math.round(performance.now() - connectStartedAt);
    if (name === "first_frame" && state.timing.offer_sent !== undefined) {
      state.connectMs = state.timing.first_frame - state.timing.offer_sent;
    }
  }

  // ---- UI helpers ---------------------------------------------------------------------------

  function setState(next) {
    state.state = next;
    const labels = {
      idle: "not connected",
      connecting: "connecting…",
      ending: "hanging up…",
      connected: "connected",
      ready: "live",
      disconnected: "call ended",
      error: "error",
    };
    ui.status.textContent = labels[next] || next;
    ui.status.dataset.state = next;
    const live = next === "connecting" || next === "connected" || next === "ready";
    ui.connect.disabled = live || next === "ending";
    ui.hangup.disabled = !live;
    ui.mute.disabled = !live || !state.localAudio;
  }

  function showError(message) {
    state.errors.push(message);
    ui.error.textContent = message;
    ui.error.hidden = false;
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = "";
  }

  function mediaErrorMessage(err, what) {
    const name = err && err.name;
    if (name === "NotAllowedError" || name === "SecurityError") {
      return `${what} access was blocked. Allow it in the browser's site settings and press Connect again.`;
    }
    if (name === "NotFoundError" || name === "OverconstrainedError") {
      return `No ${what.toLowerCase()} was found.`;
    }
    if (name === "NotReadableError") {
      return `The ${what.toLowerCase()} is in use by another application.`;
    }
    return `${what} unavailable: ${(err && err.message) || err}`;
  }

  // ---- captions -----------------------------------------------------------------------------

  function lastTurn(role) {
    const last = state.captions[state.captions.length - 1];
    if (last && last.role === role) return last;
    const turn = { role, text: "", final: false, interrupted: false, parts: [], interim: "", segments: [] };
    state.captions.push(turn);
    return turn;
  }

  function joinText(a, b) {
    if (!a) return b || "";
    if (!b) return a;
    return /\s$/.test(a) || /^[\s.,!?;:]/.test(b) ? a + b : `${a} ${b}`;
  }

  function userText(text, final) {
    const turn = lastTurn("user");
    if (final) {
      turn.parts.push(text);
      turn.interim = "";
    } else {
      turn.interim = text;
    }
    turn.text = joinText(turn.parts.join(" "), turn.interim);
    turn.final = !turn.interim;
    renderCaptions();
  }

  // A transcript of the whole turn replaced the parts it revises (they come just before it).
  // Drop the parts at the end of `turn` (before index `end`) that together read `revises`.
  function dropRevised(turn, end, revises) {
    for (let i = end - 1; i >= 0; i--) {
      if (turn.parts.slice(i, end).join(" ") === revises) {
        turn.parts.splice(i, end - i);
        turn.text = joinText(turn.parts.join(" "), turn.interim);
        return true;
      }
    }
    return false;
  }

  function userRevision(text, revises) {
    const turn = lastTurn("user");
    const n = turn.parts.length;
    if (!n || turn.parts[n - 1] !== text) return;
    if (!dropRevised(turn, n - 1, revises)) {
      // the words revised closed an earlier turn (taken at a pause): they move to this one
      const k = state.captions.indexOf(turn);
      const earlier = state.captions.slice(0, k).reverse().find((t) => t.role === "user");
      if (!earlier || !dropRevised(earlier, earlier.parts.length, revises)) return;
    }
    renderCaptions();
  }

  function botSegment(id, spoken, unspoken) {
    const turn = lastTurn("bot");
    let seg = turn.segments.find((s) => s.id === id);
    if (!seg) {
      seg = { id, spoken: "", unspoken: "" };
      turn.segments.push(seg);
    }
    seg.spoken = spoken;
    seg.unspoken = unspoken;
    turn.text = turn.segments.reduce((acc, s) => joinText(acc, joinText(s.spoken, s.unspoken)), "");
    turn.final = turn.segments.every((s) => !s.unspoken);
    renderCaptions();
  }

  function renderCaptions() {
    ui.captions.textContent = "";
    for (const turn of state.captions) {
      if (!turn.text) continue;
      const p = document.createElement("p");
      p.className = `turn ${turn.role}${turn.interrupted ? " interrupted" : ""}`;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = turn.role === "user" ? "You" : state.botName;
      p.appendChild(who);
      const text = document.createElement("span");
      text.className = "text";
      if (turn.role === "user") {
        text.appendChild(document.createTextNode(turn.parts.join(" ")));
        if (turn.interim) {
          const pending = document.createElement("span");
          pending.className = "pending";
          pending.textContent = (turn.parts.length ? " " : "") + turn.interim;
          text.appendChild(pending);
        }
      } else {
        turn.segments.forEach((s, i) => {
          text.appendChild(document.createTextNode((i ? " " : "") + s.spoken));
          if (s.unspoken) {
            const rest = document.createElement("span");
            rest.className = "unspoken";
            rest.textContent = (s.spoken ? " " : "") + s.unspoken;
            text.appendChild(rest);
          }
        });
      }
      p.appendChild(text);
      ui.captions.appendChild(p);
    }
    ui.captions.scrollTop = ui.captions.scrollHeight;
  }

  // ---- latency ------------------------------------------------------------------------------

  function showLatency(d) {
    const ms = Math.round(d.voice_to_voice_ms);
    if (!Number.isFinite(ms)) return;
    state.lastLatencyMs = ms;
    state.lastLatency = d;
    state.latencies.push(ms);
    ui.latency.textContent = `${ms} ms`;
    const parts = [];
    if (Number.isFinite(d.end_of_speech_ms)) parts.push(`silence detected +${Math.round(d.end_of_speech_ms)} ms`);
    if (Number.isFinite(d.turn_decided_ms)) {
      const t = Math.round(d.turn_decided_ms);
      parts.push(`turn decided ${t < 0 ? "\u2212" + -t : "+" + t} ms`);
    }
    ui.latencyDetail.textContent = parts.join(" \u00b7 ");
  }

  // ---- RTVI ---------------------------------------------------------------------------------

  function sendJSON(obj) {
    if (dc && dc.readyState === "open") dc.send(JSON.stringify(obj));
  }

  function sendRTVI(type, data) {
    const msg = { label: RTVI_LABEL, type, id: Math.random().toString(36).slice(2, 10) };
    if (data !== undefined) msg.data = data;
    sendJSON(msg);
  }

  function sendTrackStatus(index, enabled) {
    sendJSON({ type: "signalling", message: { type: "trackStatus", receiver_index: index, enabled } });
  }

  function onRTVI(msg) {
    const d = msg.data || {};
    state.messages[msg.type] = (state.messages[msg.type] || 0) + 1;
    switch (msg.type) {
      case "bot-ready":
        mark("bot_ready");
        setState("ready");
        break;
      case "user-started-speaking":
        state.userSpeaking = true;
        lastTurn("user");
        break;
      case "user-stopped-speaking":
        state.userSpeaking = false;
        break;
      case "bot-started-speaking":
        state.botSpeaking = true;
        lastTurn("bot");
        break;
      case "server-message":
        if (d.type === "presence-turn-latency") showLatency(d);
        else if (d.type === "presence-transcript-revision") userRevision(d.text || "", d.revises || "");
        break;
      case "bot-stopped-speaking":
        state.botSpeaking = false;
        break;
      case "bot-interrupted": {
        const last = state.captions[state.captions.length - 1];
        if (last && last.role === "bot") {
          last.interrupted = true;
          last.segments.forEach((seg) => (seg.unspoken = "")); // never said: drop it
          last.text = last.segments.reduce((acc, seg) => joinText(acc, seg.spoken), "");
        }
        renderCaptions();
        break;
      }
      case "user-input":
        if (d.input_type && d.input_type !== "transcription" && d.input_type !== "chat") break;
        sawUserInput = true;
        if (d.text) userText(d.text, d.final !== false);
        break;
      case "user-transcription":
        if (!sawUserInput && d.text) userText(d.text, !!d.final);
        break;
      case "bot-output": {
        const type = d.output_type || d.aggregated_by || "sentence";
        const progress = d.spoken_progress;
        if (!progress && (type === "word" || type === "token")) break; // words are in progress data
        sawBotOutput = true;
        const id = d.segment_id ?? `t${state.captions.length}-${Math.random()}`;
        if (progress) {
          botSegment(id, progress.accumulated_text || "", progress.remaining_text || "");
        } else if (d.will_be_spoken && !d.spoken) {
          botSegment(id, "", d.text || "");
        } else {
          botSegment(id, d.text || "", "");
        }
        break;
      }
      case "bot-tts-text":
        if (!sawBotOutput && d.text) botSegment(`tts${Math.random()}`, d.text, "");
        break;
      case "error":
        if (d.fatal) showError(`The persona stopped: ${d.error || "unknown error"}`);
        state.errors.push(d.error || "error");
        break;
      default:
        break;
    }
  }

  function onDataMessage(event) {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch (_err) {
      return;
    }
    if (msg.type === "signalling" && msg.message) {
      if (msg.message.type === "renegotiate") negotiate().catch((e) => console.warn("renegotiation failed", e));
      else if (msg.message.type === "peerLeft") teardown("disconnected");
      return;
    }
    if (msg.label === RTVI_LABEL) onRTVI(msg);
    else if (msg.message_type === "conversation") {
      state.interactions.push({ event_type: msg.event_type, properties: msg.properties || {} });
      if (msg.event_type === "conversation.error") state.errors.push(msg.properties.error);
    }
  }

  // ---- WebRTC -------------------------------------------------------------------------------

  async function getLocalMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError(
        "This browser allows the microphone only on localhost or over https: open the page on " +
          "localhost (same port) to talk. You can still listen."
      );
      return null;
    }
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    } catch (err) {
      let stream = null;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
        showError(mediaErrorMessage(err, "Camera") + " Talking with audio only.");
      } catch (err2) {
        showError(mediaErrorMessage(err2, "Microphone") + " You can still listen.");
      }
      return stream;
    }
  }

  function waitForIceGathering() {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, iceServers.length ? ICE_TRICKLE_AFTER_MS : ICE_GATHER_TIMEOUT_MS);
      function done() {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      function check() {
        if (pc.iceGatheringState === "complete") done();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  async function negotiate() {
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    await waitForIceGathering();
    mark("gathered");
    offerSent = true; // later candidates go by PATCH once the answer names the connection
    mark("offer_sent");
    const response = await fetch("api/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type, pc_id: state.pcId }),
    });
    if (!response.ok) {
      const detail = await response.text();
      throw new Error(`the server refused the call (${response.status}): ${detail}`);
    }
    const answer = await response.json();
    state.pcId = answer.pc_id;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    mark("answer");
    flushCandidates();
  }

  function flushCandidates() {
    if (!state.pcId || !pendingCandidates.length) return;
    const candidates = pendingCandidates.splice(0).map((c) => ({
      candidate: c.candidate,
      sdp_mid: c.sdpMid,
      sdp_mline_index: c.sdpMLineIndex,
    }));
    fetch("api/offer", {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pc_id: state.pcId, candidates }),
    }).catch((e) => console.warn("sending ICE candidates failed", e));
  }

  function onTrack(event) {
    const track = event.track;
    if (track.kind === "audio") {
      state.remoteAudio = true;
      ui.personaAudio.srcObject = new MediaStream([track]);
      ui.personaAudio.play().catch(() => {});
    } else {
      state.remoteVideo = true;
      mark("video_track");
      ui.personaVideo.srcObject = new MediaStream([track]);
      ui.personaVideo.play().catch(() => {});
      ui.placeholder.hidden = true;
      countFrames();
    }
  }

  function countFrames() {
    const video = ui.personaVideo;
    if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
    const onFrame = () => {
      state.remoteVideoRendered += 1;
      mark("first_frame");
      if (pc) video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  async function pollStats() {
    if (!pc) return;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type !== "inbound-rtp") return;
      if (s.kind === "audio") {
        state.remoteAudioPackets = s.packetsReceived || 0;
        state.remoteAudioEnergy = s.totalAudioEnergy || 0;
      } else if (s.kind === "video") {
        state.remoteVideoFrames = s.framesDecoded || 0;
        state.remoteVideoPackets = s.packetsReceived || 0;
        if (s.frameWidth) state.remoteVideoSize = [s.frameWidth, s.frameHeight];
      }
    });
  }

  async function connect() {
    clearError();
    connectStartedAt = performance.now();
    state.timing = {};
    state.connectMs = null;
    setState("connecting");
    state.captions = [];
    renderCaptions();
    try {
      localStream = await getLocalMedia();
      mark("media");
      const audio = localStream && localStream.getAudioTracks()[0];
      const video = localStream && localStream.getVideoTracks()[0];
      state.localAudio = !!audio;
      state.localVideo = !!video;
      if (video) ui.selfVideo.srcObject = new MediaStream([video]);

      pc = new RTCPeerConnection({ iceServers });
      pc.addTransceiver(audio || "audio", { direction: "sendrecv" });
      pc.addTransceiver(video || "video", { direction: "sendrecv" });
      pc.addTransceiver("video", { direction: "sendonly" }); // pipecat's screen-share slot, unused
      pc.addEventListener("track", onTrack);
      pc.addEventListener("icecandidate", (e) => {
        if (e.candidate && offerSent) {
          pendingCandidates.push(e.candidate);
          flushCandidates();
        }
      });
      pc.addEventListener("iceconnectionstatechange", () => {
        if (pc && pc.iceConnectionState === "connected") mark("ice_connected");
      });
      pc.addEventListener("connectionstatechange", () => {
        if (!pc) return;
        if (pc.connectionState === "connected") mark("connected");
        if (pc.connectionState === "connected" && state.state === "connecting") setState("connected");
        if (pc.connectionState === "failed") {
          showError("The connection to the persona failed (no network path between browser and server).");
          teardown("error");
        }
      });

      dc = pc.createDataChannel("chat", { ordered: true });
      dc.addEventListener("message", onDataMessage);
      dc.addEventListener("open", () => {
        mark("channel_open");
        pingTimer = setInterval(() => dc && dc.readyState === "open" && dc.send(`ping: ${Date.now()}`), PING_INTERVAL_MS);
        sendTrackStatus(AUDIO_INDEX, state.localAudio && !state.micMuted);
        sendTrackStatus(VIDEO_INDEX, state.localVideo);
        sendRTVI("client-ready", {
          version: RTVI_VERSION,
          about: { library: "presence-web", library_version: "1", platform: navigator.userAgent },
        });
      });
      dc.addEventListener("close", () => {
        if (state.state !== "disconnected" && state.state !== "error") teardown("disconnected");
      });

      statsTimer = setInterval(() => pollStats().catch(() => {}), 500);
      await negotiate();
    } catch (err) {
      showError(`Could not connect: ${err.message || err}`);
      teardown("error");
    }
  }

  function teardown(finalState) {
    if (!pc && state.state === finalState) return;
    clearTimeout(hangupTimer);
    hangupTimer = null;
    ui.personaAudio.muted = false;
    clearInterval(pingTimer);
    clearInterval(statsTimer);
    pingTimer = statsTimer = null;
    if (dc) dc.close();
    if (pc) {
      pc.getSenders().forEach((s) => s.track && s.track.stop());
      pc.close();
    }
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    dc = pc = localStream = null;
    state.pcId = null;
    state.userSpeaking = state.botSpeaking = false;
    pendingCandidates = [];
    offerSent = false;
    ui.selfVideo.srcObject = null;
    ui.personaVideo.srcObject = null;
    ui.personaAudio.srcObject = null;
    ui.placeholder.hidden = false;
    state.micMuted = false;
    ui.mute.textContent = "Mute";
    ui.mute.setAttribute("aria-pressed", "false");
    setState(finalState);
  }

  function hangUp() {
    if (!pc) return;
    // Ask the server to end the conversation; it finishes its audio, then says "peerLeft" and we
    // close. Closing at once would leave its last audio write waiting on a dead connection.
    sendRTVI("disconnect-bot");
    setState("ending");
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    ui.personaAudio.muted = true;
    const deadline = setTimeout(() => teardown("disconnected"), HANGUP_TIMEOUT_MS);
    hangupTimer = deadline;
  }

  function toggleMute() {
    if (!localStream) return;
    state.micMuted = !state.micMuted;
    localStream.getAudioTracks().forEach((t) => (t.enabled = !state.micMuted));
    sendTrackStatus(AUDIO_INDEX, !state.micMuted);
    ui.mute.textContent = state.micMuted ? "Unmute" : "Mute";
    ui.mute.setAttribute("aria-pressed", String(state.micMuted));
  }

  async function loadConfig() {
    try {
      const config = await (await fetch("api/config")).json();
      iceServers = config.iceServers || [];
      if (config.title) {
        state.botName = config.title;
        ui.title.textContent = config.title;
        document.title = `${config.title} · presence`;
      }
    } catch (_err) {
      // The defaults work for loopback/LAN.
    }
  }

  ui.connect.addEventListener("click", () => connect());
  ui.hangup.addEventListener("click", () => hangUp());
  ui.mute.addEventListener("click", () => toggleMute());
  window.addEventListener("beforeunload", () => pc && hangUp());
  setState("idle");
  loadConfig();
})();
