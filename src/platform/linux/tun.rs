//! Creating the TUN device with the `tun` crate (privileged, in the
//! parent); the worker reads and writes its descriptor (`io::tun_device`).
//!
//! With offloads the device is opened with a virtio-net header on every
//! packet (IFF_VNET_HDR) and told which segmentation it may leave to us
//! (TUNSETOFFLOAD): the kernel then hands over 64 KB TCP/UDP super-packets
//! and accepts coalesced ones, one read or write for dozens of packets.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use tracing::info;

use crate::io::kernel_offloads::TunOffloads;

/// `_IOW('T', 208, unsigned int)` from linux/if_tun.h.
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;
const TUN_F_TSO_ECN: libc::c_uint = 0x08;
const TUN_F_USO4: libc::c_uint = 0x20;
const TUN_F_USO6: libc::c_uint = 0x40;

/// Creates (or attaches to) the TUN device `name` with `mtu`, up, and
/// returns its descriptor (close-on-exec) with the offloads the kernel
/// accepted (none unless `offload`).
pub fn create_tun(name: &str, mtu: u16, offload: bool) -> io::Result<(OwnedFd, TunOffloads)> {
    let mut cfg = ::tun::Configuration::default();
    cfg.tun_name(name).mtu(mtu).up();
    cfg.platform_config(|p| {
        p.vnet_hdr(offload);
    });
    let dev =
        ::tun::create(&cfg).map_err(|e| io::Error::other(format!("cannot create TUN device {name}: {e}")))?;
    // SAFETY: into_raw_fd hands over the only owner of this open descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(dev.into_raw_fd()) };
    nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    if !offload {
        return Ok((fd, TunOffloads::default()));
    }
    let tcp = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    let offloads = if set_offload(&fd, tcp | TUN_F_USO4 | TUN_F_USO6).is_ok() {
        TunOffloads {
            vnet_hdr: true,
            tso: true,
            uso: true,
        }
    } else if let Err(e) = set_offload(&fd, tcp) {
        // The header stays (it was asked for at open); only segmentation
        // is off: every packet then comes one by one, header and all.
        info!(
            interface = name,
            "TUN offloads refused ({e}): one packet per read"
        );
        TunOffloads {
            vnet_hdr: true,
            tso: false,
            uso: false,
        }
    } else {
        info!(
            interface = name,
            "TUN: UDP segmentation offload refused (kernel before 6.2): TCP only"
        );
        TunOffloads {
            vnet_hdr: true,
            tso: true,
            uso: false,
        }
    };
    Ok((fd, offloads))
}

fn set_offload(fd: &OwnedFd, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: TUNSETOFFLOAD takes its flags by value; `fd` is open for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETOFFLOAD as _, flags as libc::c_ulong) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
