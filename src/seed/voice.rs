//! Speech-like voice messages: a glottal pulse train with intonation, shaped by
//! three moving formant resonators into syllables, grouped into words and phrases
//! with pauses, then AMR-NB encoded (12.2 kbit/s, or 7.95 for some speakers).

use crate::seed::amr::{encode_amr_nb, Mode, SAMPLE_RATE};
use crate::seed::plan::Rng;

/// An AMR-NB voice message of `seconds`.
pub fn amr_voice(seconds: u32, rng: &mut Rng) -> Result<Vec<u8>, String> {
    let pcm = speech_pcm(seconds, rng);
    let mode = if rng.unit() < 0.8 {
        Mode::Mr122
    } else {
        Mode::Mr795
    };
    encode_amr_nb(&pcm, mode)
}

/// A two-pole resonator (one formant).
struct Resonator {
    y1: f64,
    y2: f64,
}

impl Resonator {
    fn run(&mut self, x: f64, freq: f64, bandwidth: f64) -> f64 {
        let fs = f64::from(SAMPLE_RATE);
        let r = (-std::f64::consts::PI * bandwidth / fs).exp();
        let a1 = 2.0 * r * (2.0 * std::f64::consts::PI * freq / fs).cos();
        let a2 = -r * r;
        let y = (1.0 - r) * x + a1 * self.y1 + a2 * self.y2;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Vowel-like formant targets (F1, F2, F3 in Hz).
const VOWELS: [[f64; 3]; 6] = [
    [730.0, 1090.0, 2440.0],
    [270.0, 2290.0, 3010.0],
    [530.0, 1840.0, 2480.0],
    [570.0, 840.0, 2410.0],
    [300.0, 870.0, 2240.0],
    [660.0, 1720.0, 2410.0],
];

/// Peak level of the speech (of 32767): a voice message recorded close to the mic.
const PEAK: f64 = 16_000.0;
/// Level of the room tone under it.
const ROOM_TONE: f64 = 60.0;

/// `seconds` of 8 kHz mono speech-like samples.
pub fn speech_pcm(seconds: u32, rng: &mut Rng) -> Vec<i16> {
    let fs = f64::from(SAMPLE_RATE);
    let total = (seconds * SAMPLE_RATE) as usize;
    let base_pitch = rng.range(95.0, 230.0);
    let mut pcm: Vec<f64> = Vec::with_capacity(total);
    let mut formants = [
        Resonator { y1: 0.0, y2: 0.0 },
        Resonator { y1: 0.0, y2: 0.0 },
        Resonator { y1: 0.0, y2: 0.0 },
    ];
    let mut phase = 0.0f64;
    let mut noise = rng.clone();
    // A short lead-in of silence, as a recording starts.
    push_silence(&mut pcm, (0.15 * fs) as usize, total);
    while pcm.len() < total {
        // A phrase of 2-6 words, its pitch falling towards the end.
        let words = 2 + rng.below(5);
        for word in 0..words {
            let syllables = 1 + rng.below(3);
            let mut from = VOWELS[rng.below(VOWELS.len() as u64) as usize];
            for _ in 0..syllables {
                let to = VOWELS[rng.below(VOWELS.len() as u64) as usize];
                let len = (rng.range(0.12, 0.26) * fs) as usize;
                let fricative = rng.unit() < 0.3;
                for n in 0..len {
                    if pcm.len() >= total {
                        break;
                    }
                    let t = n as f64 / len as f64;
                    let declination = 1.0 - 0.15 * (word as f64 / words as f64);
                    let pitch = base_pitch
                        * declination
                        * (1.0
                            + 0.06
                                * (2.0 * std::f64::consts::PI * 4.0 * pcm.len() as f64 / fs).sin());
                    phase += pitch / fs;
                    let mut excitation = if phase >= 1.0 {
                        phase -= 1.0;
                        1.0
                    } else {
                        0.0
                    };
                    // A consonant onset: noise in the first fifth of the syllable.
                    if fricative && t < 0.2 {
                        excitation = (noise.unit() - 0.5) * 0.3;
                    }
                    let mut y = 0.0;
                    for (k, resonator) in formants.iter_mut().enumerate() {
                        let freq = from[k] + (to[k] - from[k]) * t;
                        y += resonator.run(excitation, freq, 60.0 + 40.0 * k as f64)
                            / (1.0 + k as f64);
                    }
                    // Syllable envelope: a raised cosine.
                    let envelope = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * t).cos();
                    pcm.push(y * envelope);
                }
                from = to;
            }
            let gap = rng.range(0.04, 0.18);
            push_silence(&mut pcm, (gap * fs) as usize, total);
        }
        let pause = rng.range(0.35, 0.8);
        push_silence(&mut pcm, (pause * fs) as usize, total);
    }
    // Normalised to the peak, then the room tone under it.
    let peak = pcm.iter().fold(0.0f64, |m, s| m.max(s.abs())).max(1e-9);
    pcm.iter()
        .map(|s| {
            (s / peak * PEAK + (noise.unit() - 0.5) * ROOM_TONE).clamp(-32767.0, 32767.0) as i16
        })
        .collect()
}

/// A pause (the room tone is added at the end).
fn push_silence(pcm: &mut Vec<f64>, len: usize, total: usize) {
    let len = len.min(total.saturating_sub(pcm.len()));
    pcm.extend(std::iter::repeat_n(0.0, len));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_has_the_length_asked_and_pauses() {
        let mut rng = Rng::new(5, 1);
        let pcm = speech_pcm(3, &mut rng);
        assert_eq!(pcm.len(), 3 * SAMPLE_RATE as usize);
        let loud = pcm.iter().filter(|s| s.unsigned_abs() > 1000).count();
        let quiet = pcm.iter().filter(|s| s.unsigned_abs() < 100).count();
        assert!(loud > pcm.len() / 20, "speech: {loud} loud samples");
        assert!(quiet > pcm.len() / 20, "pauses: {quiet} quiet samples");
    }
}
