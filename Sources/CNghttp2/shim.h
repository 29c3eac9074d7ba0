// libnghttp2, from Debian's libnghttp2-dev (pkg-config: libnghttp2).
//
// nghttp2 1.60 replaced the `ssize_t` entry points (mem_recv, send_callback,
// data_provider) with `nghttp2_ssize` ones (`*2`) and deprecated the old ones;
// Debian 12 ships 1.52, which has only the old ones. These adapters pick the
// right API at compile time so that Swift sees one set of names either way.
#ifndef C_NGHTTP2_SHIM_H
#define C_NGHTTP2_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <nghttp2/nghttp2.h>

#if NGHTTP2_VERSION_NUM >= 0x013c00
#define CNGHTTP2_HAS_SSIZE_API 1
typedef nghttp2_ssize cnghttp2_ssize;
#else
#define CNGHTTP2_HAS_SSIZE_API 0
typedef ssize_t cnghttp2_ssize;
#endif

/// Writes serialized frames; see nghttp2_send_callback.
typedef cnghttp2_ssize (*cnghttp2_send_callback)(nghttp2_session *session, const uint8_t *data,
                                                 size_t length, int flags, void *user_data);

/// Supplies a stream's DATA; see nghttp2_data_source_read_callback.
typedef cnghttp2_ssize (*cnghttp2_read_callback)(nghttp2_session *session, int32_t stream_id,
                                                 uint8_t *buf, size_t length, uint32_t *data_flags,
                                                 nghttp2_data_source *source, void *user_data);

static inline void cnghttp2_callbacks_set_send(nghttp2_session_callbacks *callbacks,
                                               cnghttp2_send_callback callback) {
#if CNGHTTP2_HAS_SSIZE_API
  nghttp2_session_callbacks_set_send_callback2(callbacks, callback);
#else
  nghttp2_session_callbacks_set_send_callback(callbacks, callback);
#endif
}

static inline cnghttp2_ssize cnghttp2_session_mem_recv(nghttp2_session *session, const uint8_t *in,
                                                       size_t length) {
#if CNGHTTP2_HAS_SSIZE_API
  return nghttp2_session_mem_recv2(session, in, length);
#else
  return nghttp2_session_mem_recv(session, in, length);
#endif
}

/// Submits response HEADERS; with a NULL `read` the HEADERS frame ends the stream.
/// `source` is handed back to `read` (and to the send_data callback).
static inline int cnghttp2_submit_response(nghttp2_session *session, int32_t stream_id,
                                           const nghttp2_nv *nva, size_t nvlen,
                                           cnghttp2_read_callback read, void *source) {
#if CNGHTTP2_HAS_SSIZE_API
  nghttp2_data_provider2 provider = {.source = {.ptr = source}, .read_callback = read};
  return nghttp2_submit_response2(session, stream_id, nva, nvlen, read ? &provider : NULL);
#else
  nghttp2_data_provider provider = {.source = {.ptr = source}, .read_callback = read};
  return nghttp2_submit_response(session, stream_id, nva, nvlen, read ? &provider : NULL);
#endif
}

/// Submits request HEADERS and returns the new stream's id (or a negative error).
/// `stream_user_data` is also the data source handed to `read`.
static inline int32_t cnghttp2_submit_request(nghttp2_session *session, const nghttp2_nv *nva,
                                              size_t nvlen, cnghttp2_read_callback read,
                                              void *stream_user_data) {
#if CNGHTTP2_HAS_SSIZE_API
  nghttp2_data_provider2 provider = {.source = {.ptr = stream_user_data}, .read_callback = read};
  return nghttp2_submit_request2(session, NULL, nva, nvlen, read ? &provider : NULL,
                                 stream_user_data);
#else
  nghttp2_data_provider provider = {.source = {.ptr = stream_user_data}, .read_callback = read};
  return nghttp2_submit_request(session, NULL, nva, nvlen, read ? &provider : NULL,
                                stream_user_data);
#endif
}

#endif
