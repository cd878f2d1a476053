//! What answers requests outside `/file/` (SPEC §1): in the embedded shape the
//! embedded store's own HTTP side ([`embedded`], with its POST form uploads in
//! [`form_upload`]); with an S3 store, the pass-through to it ([`passthrough`]),
//! limited to the bucket's objects ([`bucket_scope`]), which watches the uploads it
//! forwards for eager derivation ([`upload_watch`]). A refused upload's unread body is
//! read before the answer ([`unread_body`]).

pub mod bucket_scope;
pub mod embedded;
pub mod form_upload;
pub mod passthrough;
pub mod presigned_get;
pub mod s3_error;
pub mod unread_body;
pub mod upload_watch;

use std::sync::Arc;

use embedded::EmbeddedStoreServer;
use passthrough::PassThrough;

/// What answers requests outside `/file/`.
#[derive(Clone)]
pub enum StoreFront {
    /// The embedded store answers them itself.
    Embedded(Arc<EmbeddedStoreServer>),
    /// They are proxied to the S3 store.
    Upstream(Arc<PassThrough>),
}
