// The microphone's samples, off the audio thread: the first input channel in blocks of 4096
// float32 samples, posted to the page (listen.js) until it disconnects the node.
"use strict";

const BLOCK = 4096;

class SoundmarkCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.buffer = new Float32Array(BLOCK);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let i = 0;
      while (i < channel.length) {
        const n = Math.min(channel.length - i, BLOCK - this.filled);
        this.buffer.set(channel.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === BLOCK) {
          this.port.postMessage(this.buffer);
          this.buffer = new Float32Array(BLOCK);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("soundmark-capture", SoundmarkCapture);
