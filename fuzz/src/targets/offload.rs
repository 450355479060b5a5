//! The `offload` target: what a TUN device with offloads hands the worker
//! (a virtio-net header, then a packet or a 64 KB super-packet) split into
//! segments, and those segments joined again for a TUN write.

use mlvpn_rs::io::offload::{segments, CoalesceConfig, Coalescer, VirtioNetHdr, VNET_HDR_LEN};

/// Slots of the coalescer: few, so that "full" is reached too.
const SLOTS: usize = 4;

/// Splitting never panics and keeps every segment within the size it
/// announced; whatever the coalescer joins from the segments splits again,
/// into as many packets as were pushed.
pub fn offload(data: &[u8]) {
    let Some((hdr, rest)) = data.split_first_chunk::<VNET_HDR_LEN>() else {
        return;
    };
    let Ok(hdr) = VirtioNetHdr::decode(hdr) else {
        return;
    };
    let mut packet = rest.to_vec();
    let Ok(mut segs) = segments(&hdr, &mut packet) else {
        return;
    };
    let max = segs.max_segment_len();
    let mut dst = vec![0u8; 65536 + 64];
    let mut coalescer = Coalescer::with_slots(CoalesceConfig { tcp: true, udp: true }, SLOTS);
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut pushed = 0usize;
    while let Some(r) = segs.next_into(&mut dst) {
        let Ok(n) = r else {
            // A typed error for a super-packet that made no sense: dropped.
            return;
        };
        assert!(n <= max, "segment of {n} bytes, announced at most {max}");
        let segment = &dst[..n];
        if coalescer.push(segment).is_err() {
            flush(&mut coalescer, &mut written);
            coalescer
                .push(segment)
                .expect("an empty coalescer takes a packet");
        }
        pushed += 1;
    }
    flush(&mut coalescer, &mut written);
    let mut split_again = 0usize;
    for w in &written {
        let hdr = VirtioNetHdr::decode(w).expect("the coalescer's header decodes");
        let mut p = w[VNET_HDR_LEN..].to_vec();
        let mut again = segments(&hdr, &mut p).expect("the coalescer's output splits");
        while let Some(r) = again.next_into(&mut dst) {
            r.expect("the coalescer's output splits");
            split_again += 1;
        }
    }
    assert_eq!(split_again, pushed, "packets joined then split again");
}

fn flush(c: &mut Coalescer, written: &mut Vec<Vec<u8>>) {
    c.flush(|b| {
        written.push(b.to_vec());
        Ok(())
    })
    .expect("writes to memory do not fail");
}
