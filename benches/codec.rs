//! Micro-benchmarks of the per-message hot path that does not touch the
//! network or the store: decoding client STOMP frames, encoding MESSAGE
//! frames, and the JSON of a message as a visitor receives it.
//!
//! `cargo bench --bench codec` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use chatgate::domain::{
    ChannelId, ConversationId, DeliveryState, Event, Message, MessageId, SenderKind, TenantId,
};
use chatgate::wire::visitor::event_body;
use chatgate::ws::stomp::{Command, Incoming, StompDecoder, StompFrame};

fn message(text: &str) -> Message {
    let conversation = ConversationId::new();
    Message {
        id: MessageId::new(),
        conversation_id: conversation,
        channel_id: Some(ChannelId::new()),
        tenant_id: TenantId::new(),
        seq: 4711,
        sender_kind: SenderKind::Visitor,
        sender_id: conversation.0,
        sender_name: None,
        sender_avatar: None,
        content: text.into(),
        state: DeliveryState::Delivered,
        sent_at_ms: 1_795_000_000_123,
        client_message_id: Some("client-key-1".into()),
        read_at_ms: None,
        edited_at_ms: None,
        deleted: false,
        reactions: Vec::new(),
        notice: None,
        quick_replies: Vec::new(),
        postback: None,
        mentions: Vec::new(),
        attachments: Vec::new(),
        private: false,
        bot: false,
    }
}

fn send_frame(text: &str) -> Vec<u8> {
    let body = serde_json::json!({"message": {"text": text}}).to_string();
    StompFrame::new(Command::Send)
        .header("destination", "/app/send")
        .header("content-type", "application/json")
        .header("receipt", "r-42")
        .body(body.into_bytes())
        .encode()
}

fn stomp(c: &mut Criterion) {
    let mut group = c.benchmark_group("stomp");
    let short = send_frame("Hello, is anyone there?");
    let long = send_frame(&"x".repeat(4096));
    for (name, wire) in [("decode_send_short", &short), ("decode_send_4k", &long)] {
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || StompDecoder::new(64 * 1024),
                |decoder| {
                    decoder.push(black_box(wire)).unwrap();
                    match decoder.next().unwrap() {
                        Some(Incoming::Frame(frame)) => frame,
                        other => panic!("expected a frame, got {other:?}"),
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    // What a session writes per delivered message: a MESSAGE frame around
    // the (shared, already encoded) JSON body.
    let event = Event::MessageCreated {
        message: message("Hello, is anyone there?"),
    };
    let signer = chatgate::files::Signer::new(b"bench", 3600);
    let (_, body) = event_body(&event, &signer).unwrap();
    let body = bytes::Bytes::from(body);
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_message_frame", |b| {
        let mut out = Vec::with_capacity(1024);
        b.iter(|| {
            out.clear();
            StompFrame::new(Command::Message)
                .header("destination", "/queue/message")
                .header("subscription", "sub-0")
                .header("message-id", "4711")
                .header("content-type", "application/json")
                .body(body.clone())
                .encode_into(&mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

fn json(c: &mut Criterion) {
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(1));
    let event = Event::MessageCreated {
        message: message("Hello, is anyone there?"),
    };
    let signer = chatgate::files::Signer::new(b"bench", 3600);
    group.bench_function("visitor_body_message_created", |b| {
        b.iter(|| event_body(black_box(&event), &signer))
    });
    group.bench_function("bus_event_roundtrip", |b| {
        b.iter(|| {
            let wire = serde_json::to_vec(black_box(&event)).unwrap();
            let back: Event = serde_json::from_slice(&wire).unwrap();
            back
        })
    });
    group.finish();
}

criterion_group!(benches, stomp, json);
criterion_main!(benches);
