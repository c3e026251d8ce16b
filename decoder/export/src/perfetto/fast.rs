//! The hot path: one track-event packet per record, encoded without building the
//! [`TracePacket`] message.
//!
//! `prost`'s generic encoding (a `BufMut` capacity check per byte, message lengths
//! computed again at each level) took 60 % of the export's time. This writes the exact
//! bytes `prost` writes for the same [`TracePacket`] (fields in declaration order,
//! lengths computed once), which [`tests`] checks packet by packet against `prost`;
//! `prost` itself still encodes the rare packets (descriptors, losses) and the interned
//! data.

use prost::Message;

use super::proto::{DebugAnnotation, InternedData, TRACE_PACKET_TAG};

#[cfg(test)]
use super::proto::{TracePacket, TracePacketDefaults, TrackEvent, TrackEventDefaults};

/// Writes `v` as a protobuf varint.
#[inline(always)]
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes of `v` as a varint.
#[inline(always)]
pub fn varint_len(v: u64) -> usize {
    ((64 - (v | 1).leading_zeros()) as usize).div_ceil(7)
}

/// Writes a `DebugAnnotation`'s fields (not its tag and length).
#[inline]
fn annotation(out: &mut Vec<u8>, a: &DebugAnnotation) {
    if let Some(v) = a.name_iid {
        out.push(1 << 3);
        varint(out, v);
    }
    if let Some(v) = a.bool_value {
        out.push(2 << 3);
        out.push(u8::from(v));
    }
    if let Some(v) = a.uint_value {
        out.push(3 << 3);
        varint(out, v);
    }
    if let Some(v) = &a.string_value {
        out.push(6 << 3 | 2);
        varint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
    if let Some(v) = &a.name {
        out.push(10 << 3 | 2);
        varint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
    if let Some(v) = a.string_value_iid {
        varint(out, 17 << 3);
        varint(out, v);
    }
}

/// A track event's fields, for [`Encoder::packet`].
#[derive(Debug, Clone, Copy)]
pub struct EventPacket<'a> {
    /// `TracePacket.timestamp`.
    pub ts: u64,
    /// `TracePacket.trusted_packet_sequence_id`.
    pub seq: u32,
    /// `TracePacket.sequence_flags`.
    pub flags: u32,
    /// `TrackEvent.category_iids` (one or none).
    pub cat: Option<u64>,
    /// `TrackEvent.debug_annotations`.
    pub annots: &'a [DebugAnnotation],
    /// `TrackEvent.type`.
    pub ty: i32,
    /// `TrackEvent.name_iid`.
    pub name: Option<u64>,
    /// `TrackEvent.track_uuid` (none: the sequence's default).
    pub track: Option<u64>,
    /// `TracePacket.trace_packet_defaults.track_event_defaults.track_uuid`.
    pub default_track: Option<u64>,
    /// `TracePacket.interned_data`.
    pub interned: Option<&'a InternedData>,
}

/// Scratch buffers of the encoder.
#[derive(Debug, Default)]
pub struct Encoder {
    te: Vec<u8>,
    tmp: Vec<u8>,
    interned: Vec<u8>,
}

impl Encoder {
    /// Appends `Trace.packet` (tag, length, packet) for `e` to `out`.
    pub fn packet(&mut self, out: &mut Vec<u8>, e: &EventPacket<'_>) {
        let te = &mut self.te;
        te.clear();
        if let Some(c) = e.cat {
            te.push(3 << 3);
            varint(te, c);
        }
        for a in e.annots {
            self.tmp.clear();
            annotation(&mut self.tmp, a);
            te.push(4 << 3 | 2);
            varint(te, self.tmp.len() as u64);
            te.extend_from_slice(&self.tmp);
        }
        te.push(9 << 3);
        // `int32`: a negative value would take 10 bytes; the types are 1 to 3.
        varint(te, e.ty as i64 as u64);
        if let Some(n) = e.name {
            te.push(10 << 3);
            varint(te, n);
        }
        if let Some(t) = e.track {
            te.push(11 << 3);
            varint(te, t);
        }
        self.interned.clear();
        if let Some(d) = e.interned {
            // Writing into a Vec cannot fail.
            let _ = d.encode(&mut self.interned);
        }
        let mut len = 1 + varint_len(e.ts) + 1 + varint_len(u64::from(e.seq));
        len += 1 + varint_len(te.len() as u64) + te.len();
        if e.interned.is_some() {
            len += 1 + varint_len(self.interned.len() as u64) + self.interned.len();
        }
        len += 1 + varint_len(u64::from(e.flags));
        // trace_packet_defaults { track_event_defaults { track_uuid } }: tag 59 takes
        // two bytes.
        let defaults = e.default_track.map(|t| {
            let ted = 1 + varint_len(t);
            let tpd = 1 + varint_len(ted as u64) + ted;
            (t, ted, tpd)
        });
        if let Some((_, _, tpd)) = defaults {
            len += 2 + varint_len(tpd as u64) + tpd;
        }
        out.reserve(len + 11);
        out.push(TRACE_PACKET_TAG);
        varint(out, len as u64);
        out.push(8 << 3);
        varint(out, e.ts);
        out.push(10 << 3);
        varint(out, u64::from(e.seq));
        out.push(11 << 3 | 2);
        varint(out, te.len() as u64);
        out.extend_from_slice(te);
        if e.interned.is_some() {
            out.push(12 << 3 | 2);
            varint(out, self.interned.len() as u64);
            out.extend_from_slice(&self.interned);
        }
        out.push(13 << 3);
        varint(out, u64::from(e.flags));
        if let Some((t, ted, tpd)) = defaults {
            varint(out, 59 << 3 | 2);
            varint(out, tpd as u64);
            out.push(11 << 3 | 2);
            varint(out, ted as u64);
            out.push(11 << 3);
            varint(out, t);
        }
    }
}

/// The same packet as `prost` encodes it (the reference for the tests).
#[cfg(test)]
fn reference(e: &EventPacket<'_>) -> Vec<u8> {
    let p = TracePacket {
        timestamp: Some(e.ts),
        trusted_packet_sequence_id: Some(e.seq),
        track_event: Some(TrackEvent {
            category_iids: e.cat.into_iter().collect(),
            debug_annotations: e.annots.to_vec(),
            r#type: Some(e.ty),
            name_iid: e.name,
            track_uuid: e.track,
            ..Default::default()
        }),
        interned_data: e.interned.cloned(),
        sequence_flags: Some(e.flags),
        trace_packet_defaults: e.default_track.map(|t| TracePacketDefaults {
            track_event_defaults: Some(TrackEventDefaults {
                track_uuid: Some(t),
            }),
        }),
        ..Default::default()
    };
    let mut v = vec![TRACE_PACKET_TAG];
    p.encode_length_delimited(&mut v).unwrap();
    v
}

#[cfg(test)]
mod tests {
    use super::super::proto::{EventName, InternedString};
    use super::*;

    #[test]
    fn varint_len_matches_prost() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(varint_len(v), prost::encoding::encoded_len_varint(v), "{v}");
            let mut a = Vec::new();
            varint(&mut a, v);
            let mut b = Vec::new();
            prost::encoding::encode_varint(v, &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn packets_are_byte_identical_to_prost() {
        let annots = [
            DebugAnnotation {
                name_iid: Some(1),
                string_value_iid: Some(300),
                ..Default::default()
            },
            DebugAnnotation {
                name_iid: Some(2),
                uint_value: Some(u64::MAX),
                ..Default::default()
            },
            DebugAnnotation {
                name_iid: Some(3),
                bool_value: Some(true),
                ..Default::default()
            },
            DebugAnnotation {
                name: Some("payload".into()),
                string_value: Some("00ff".repeat(40)),
                ..Default::default()
            },
        ];
        let interned = InternedData {
            event_names: vec![EventName {
                iid: Some(7),
                name: Some("Call".into()),
            }],
            debug_annotation_string_values: vec![InternedString {
                iid: Some(300),
                str: Some(b"Endpoint".to_vec()),
            }],
            ..Default::default()
        };
        let mut enc = Encoder::default();
        for ts in [0, 1_000, u64::MAX] {
            for k in 0..=annots.len() {
                for (name, cat, inter, track, default_track) in [
                    (None, None, None, Some(1001), None),
                    (Some(7), Some(1), Some(&interned), None, Some(1001)),
                    (Some(1 << 40), Some(300), None, Some(1 << 50), Some(300)),
                ] {
                    let e = EventPacket {
                        ts,
                        seq: 3,
                        flags: 3,
                        cat,
                        annots: &annots[..k],
                        ty: 1 + (k as i32 % 3),
                        name,
                        track,
                        default_track,
                        interned: inter,
                    };
                    let mut out = vec![0xee];
                    enc.packet(&mut out, &e);
                    assert_eq!(out[1..], reference(&e)[..], "{e:?}");
                }
            }
        }
    }
}
