//! The `control` target: the control socket's protocol, both ends. The bytes are a
//! request line as the server reads it (`parse_request`) and, when UTF-8, an answer
//! line as the client reads it (`parse_response`). Properties: nothing panics; what
//! either end reads, written again, reads back the same; the server's error answer to a
//! bad request is an answer the client reads back word for word.

use cloison::daemon::control::{Response, parse_request, parse_response};

pub fn check(data: &[u8]) {
    match parse_request(data) {
        Ok(request) => {
            let line = serde_json::to_string(&request).expect("a request serializes");
            assert_eq!(parse_request(line.as_bytes()), Ok(request));
        }
        Err(message) => {
            let answer = Response::Error { message };
            let line = serde_json::to_string(&answer).expect("an answer serializes");
            assert_eq!(parse_response(&line).ok(), Some(answer));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_response(text) {
            Ok(answer) => {
                let line = serde_json::to_string(&answer).expect("an answer serializes");
                assert_eq!(parse_response(&line).ok(), Some(answer));
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}
