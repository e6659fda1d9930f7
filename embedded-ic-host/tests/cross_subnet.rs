//! Request sizes between subnets: 2 MiB (method name + argument) to
//! another subnet (`call_perform` traps beyond it), 10 MiB on the same
//! subnet (`call_data_append` traps beyond it), as the replica's contract
//! violations: the calling message is rolled back.

mod common;
use candid::{Decode, Encode, Principal};
use common::*;
use embedded_ic_host::{Host, HostError, Limits};

const MIB: u64 = 1024 * 1024;

fn filler(
    host: &mut Host,
    via: Principal,
    callee: Principal,
    size: u64,
) -> Result<Forwarded, HostError> {
    let b = host.update(
        via,
        user(),
        "forward_filler",
        Encode!(&callee, &"sink".to_string(), &size, &None::<u32>).unwrap(),
    )?;
    Ok(Decode!(&b, Forwarded).unwrap())
}

fn sunk(f: Forwarded) -> u64 {
    u64::from_le_bytes(f.reply().try_into().unwrap())
}

#[test]
fn requests_to_another_subnet_are_limited_to_2_mib_and_on_the_same_subnet_to_10_mib() {
    let mut host = Host::new();
    let s1 = host.add_subnet();
    let a = probe(&mut host);
    let same = probe(&mut host);
    let far = host
        .install_on(s1, probe_wasm(), Encode!().unwrap(), user())
        .unwrap();
    let limits = Limits::default();
    assert_eq!(limits.max_call_bytes, 2 * MIB);
    assert_eq!(limits.max_same_subnet_call_bytes, 10 * MIB);
    let name = "sink".len() as u64;
    // Exactly 2 MiB of method name + argument crosses.
    assert_eq!(
        sunk(filler(&mut host, a, far, 2 * MIB - name).unwrap()),
        2 * MIB - name
    );
    // One byte more does not: the caller traps, nothing is sent.
    let e = filler(&mut host, a, far, 2 * MIB - name + 1).unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("call_perform") && m.contains("another subnet")),
        "{e:?}"
    );
    // The same size to a canister on the caller's subnet goes through, up to 10 MiB.
    assert_eq!(sunk(filler(&mut host, a, same, 3 * MIB).unwrap()), 3 * MIB);
    assert_eq!(
        sunk(filler(&mut host, a, same, 10 * MIB - name).unwrap()),
        10 * MIB - name
    );
    let e = filler(&mut host, a, same, 10 * MIB - name + 1).unwrap_err();
    assert!(
        matches!(&e, HostError::CanisterTrapped(m) if m.contains("call_data_append")),
        "{e:?}"
    );
    // From the other side the roles swap.
    assert!(filler(&mut host, far, a, 3 * MIB).is_err());
    // Replies are limited to 2 MiB everywhere (Limits::max_reply_bytes).
    assert_eq!(limits.max_reply_bytes, 2 * MIB);
}
