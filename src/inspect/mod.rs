//! Packet inspection: classification of frames (pure) and the capture loops (edges).
//! (Being written; see issue 4.)
