//! One check per class of mistake: the reported line, and a message
//! that names the key.

use super::{client, fails, parse, public, server};

#[test]
fn syntax_and_type_errors() {
    fails(client().replace("\"client\"", "client"), 1, "mode");
    fails(
        client().replace("user = \"nobody\"", "colour = \"blue\""),
        6,
        "unknown key `colour`",
    );
    fails(
        client().replace("user = \"nobody\"", "colour = \"blue\""),
        6,
        "private_key_file",
    );
    fails(
        client().replace("[interface]", "[interfaces]"),
        2,
        "unknown key `interfaces`",
    );
    fails(
        client().replace("name = \"mlvpn0\"\n", ""),
        2,
        "missing required key `name`",
    );
    fails(
        client().replace("bind = \"198.51.100.7\"\n", ""),
        18,
        "[[path]]: missing required key `bind`",
    );
    fails(
        client().replace("fallback = true", "fallback = \"yes\""),
        22,
        "path.fallback",
    );
    fails(
        client().replace("[\"10.42.0.2/30\"]", "\"10.42.0.2/30\""),
        4,
        "interface.address",
    );
    fails(
        client().replace("name = \"lte\"", "name = \"lte\"\nname = \"x\""),
        20,
        "duplicate key `name`",
    );
    // A missing top-level key has no line.
    let e = parse(&client().replace("mode = \"client\"\n", "")).unwrap_err();
    assert_eq!(e.line, None, "{e}");
    assert!(e.to_string().contains("missing required key `mode`"), "{e}");
}

#[test]
fn interface_mistakes() {
    let c = client;
    fails(c().replace("\"client\"", "\"clinet\""), 1, "mode");
    fails(
        c().replace("\"mlvpn0\"", "\"a-very-long-interface-name\""),
        3,
        "interface.name",
    );
    fails(c().replace("\"mlvpn0\"", "\"mlvpn 0\""), 3, "interface.name");
    fails(
        c().replace("10.42.0.2/30", "10.42.0.300/30"),
        4,
        "interface.address",
    );
    fails(c().replace("10.42.0.2/30", "10.42.0.2"), 4, "not a CIDR");
    fails(c().replace("[\"10.42.0.2/30\"]", "[]"), 4, "interface.address");
    fails(c().replace("\"k\"", "\"missing.key\""), 5, "private_key_file");
    fails(c().replace("\"nobody\"", "\"root\""), 6, "unprivileged");
    fails(
        c().replace("user = \"nobody\"", "mtu = 70000"),
        6,
        "interface.mtu",
    );
    fails(c().replace("user = \"nobody\"", "mtu = 500"), 6, "576");
    let v6 = c().replace("[\"10.42.0.2/30\"]", "[\"10.42.0.2/30\", \"fd42::2/64\"]");
    fails(v6.replace("user = \"nobody\"", "mtu = 1000"), 6, "1280");
    fails(
        c().replace("user = \"nobody\"", "keepalive = \"5\""),
        6,
        "needs a unit",
    );
    fails(
        c().replace("user = \"nobody\"", "keepalive = 5"),
        6,
        "needs a unit",
    );
    fails(
        c().replace("user = \"nobody\"", "keepalive = \"5 weeks\""),
        6,
        "interface.keepalive",
    );
    fails(
        c().replace("user = \"nobody\"", "path_timeout = \"1s\""),
        6,
        "path_timeout",
    );
    fails(
        c().replace("user = \"nobody\"", "keepalive = \"5s\""),
        6,
        "longer than keepalive",
    );
    fails(
        c().replace("user = \"nobody\"", "up_script = \"up.sh\""),
        6,
        "absolute",
    );
}

#[test]
fn peer_mistakes() {
    fails(
        client().replace("public_key = \"", "public_key = \"x"),
        10,
        "peer.public_key",
    );
    fails(
        client().replace(&public(9), "AAAA"),
        10,
        "decodes to 3 bytes, expected 32",
    );
    fails(
        client().replace(&public(9), "@SERVER_PUBLIC_KEY@"),
        10,
        "placeholder",
    );
    fails(client().replace(&public(9), &public(7)), 10, "our own public key");
    let two = client().replace(
        "\n[[path]]\nname = \"dsl\"",
        "[[peer]]\npublic_key = \"AAAA\"\n[[path]]\nname = \"dsl\"",
    );
    fails(two, 11, "exactly one [[peer]]");
    fails(
        client().replace(
            "\n\n[[path]]\nname = \"dsl\"",
            "\nallowed_ips = [\"nope\"]\n[[path]]\nname = \"dsl\"",
        ),
        11,
        "peer.allowed_ips",
    );
    fails(server().replace(&public(10), &public(9)), 13, "duplicate peer");
    fails(
        server().replace("allowed_ips = [\"10.42.0.2/32\"]\n", ""),
        10,
        "allowed_ips",
    );
    fails(
        server().replace("[\"10.42.0.2/32\"]", "[]"),
        11,
        "peer.allowed_ips",
    );
}

#[test]
fn the_same_prefix_on_two_peers_is_refused_naming_both_lines() {
    // Peer b (line 14) repeats peer a's prefix (line 11), host bits aside.
    let text = server().replace("[\"10.42.0.6/32\", ", "[\"10.42.0.2/32\", ");
    fails(text, 14, "is also in the allowed_ips of the peer at line 11");
    let text = server()
        .replace("[\"10.42.0.2/32\"]", "[\"10.42.1.0/24\"]")
        .replace("[\"10.42.0.6/32\", ", "[\"10.42.1.77/24\", ");
    fails(text, 14, "10.42.1.0/24 is also in");
    // Nested prefixes are fine (the longest match decides), and so is a
    // prefix repeated within one peer.
    let nested = server()
        .replace("[\"10.42.0.2/32\"]", "[\"10.42.0.0/16\", \"10.42.0.0/16\"]")
        .replace("[\"10.42.0.6/32\", ", "[\"10.42.1.5/32\", ");
    parse(&nested).unwrap();
}

#[test]
fn path_mistakes() {
    fails(
        client().replace("name = \"lte\"", "name = \"dsl\""),
        19,
        "duplicate path name",
    );
    fails(client().replace("name = \"lte\"", "name = \"\""), 19, "path.name");
    fails(
        client().replace("endpoint = \"203.0.113.1:5080\"\n", ""),
        13,
        "endpoint",
    );
    fails(
        client().replace("203.0.113.1:5080", "203.0.113.1"),
        15,
        "path.endpoint",
    );
    fails(
        client().replace("203.0.113.1:5080", "203.0.113.1:0"),
        15,
        "path.endpoint",
    );
    fails(client().replace("50mbit", "50 furlongs"), 16, "bandwidth_up");
    fails(client().replace("\"50mbit\"", "0"), 16, "bandwidth_up");
    fails(client().replace("\"50mbit\"", "true"), 16, "bandwidth_up");
    fails(client().replace("192.0.2.10:0", "somewhere"), 14, "path.bind");
    fails(
        client().replace("192.0.2.10:0", "192.0.2.10:99999"),
        14,
        "path.bind",
    );
    fails(
        server().replace("10.101.0.2:5080", "10.101.0.2"),
        17,
        "needs a port",
    );
    fails(
        server().replace("[::]:5081", "10.101.0.2:5080"),
        20,
        "clashes with 10.101.0.2:5080",
    );
    fails(server().replace("[::]:5081", "0.0.0.0:5080"), 20, "clashes");
    fails(
        format!("{}endpoint = \"1.2.3.4:5\"\n", server()),
        21,
        "no endpoint",
    );
}

#[test]
fn missing_sections_have_no_line() {
    let text = client();
    let e = parse(&text[..text.find("[[path]]").unwrap()]).unwrap_err();
    assert_eq!(e.line, None);
    assert!(
        e.to_string().ends_with(": no [[path]]: expected at least one"),
        "{e}"
    );
    let e = parse(&text.replace("[[peer]]\npublic_key", "# public_key")).unwrap_err();
    assert_eq!(e.line, None);
    assert!(e.to_string().contains("no [[peer]]"), "{e}");
}

#[test]
fn more_paths_than_the_tunnel_uses_are_refused() {
    let mut text = server();
    for i in 0..31 {
        text += &format!("[[path]]\nname = \"x{i}\"\nbind = \"10.9.0.{}:5080\"\n", i + 1);
    }
    // 2 + 30 paths are fine, the 33rd is not.
    let ok = text[..text.rfind("[[path]]").unwrap()].to_string();
    assert_eq!(parse(&ok).unwrap().paths.len(), 32);
    let line = text.lines().count() - 2;
    fails(text, line, "at most 32 [[path]] tables");
}
