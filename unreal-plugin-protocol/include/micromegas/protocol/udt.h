/* UDT (user-defined type) metadata: how a stream describes its transit records.
 * The tables themselves are generated into events.gen.h from schema/protocol.json. */
#ifndef MICROMEGAS_PROTOCOL_UDT_H
#define MICROMEGAS_PROTOCOL_UDT_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mm_udt_member {
  const char* name;
  const char* type_name;
  uint32_t offset;
  uint32_t size;
  uint8_t is_reference;
} mm_udt_member;

/* How a reference member is resolved when a block's dependencies are extracted. */
typedef enum mm_ref_kind {
  MM_REF_CSTRING = 1,           /* 8-byte pointer to a NUL-terminated 8-bit string */
  MM_REF_WSTRING = 2,           /* 8-byte pointer to a NUL-terminated UTF-16 string */
  MM_REF_STRING_ID = 3,         /* 16 bytes: pointer, u32 byte length (UTF-8) */
  MM_REF_STATIC_STRING_REF = 4, /* 16 bytes: pointer, u32 byte length, u8 codec */
  MM_REF_RECORD = 5,            /* 8-byte pointer to a fixed-size dependency record */
  MM_REF_PROPERTY_SET = 6       /* 8-byte pointer to an in-memory property set */
} mm_ref_kind;

typedef struct mm_ref_slot {
  uint32_t offset;
  mm_ref_kind kind;
  const char* target; /* dependency type name for MM_REF_RECORD */
} mm_ref_slot;

/* Variable-size types, read and written by name-specific code. */
typedef enum mm_custom_kind {
  MM_CUSTOM_NONE = 0,
  MM_CUSTOM_STATIC_STRING,
  MM_CUSTOM_STATIC_STRING_DEPENDENCY,
  MM_CUSTOM_PROPERTY_SET,
  MM_CUSTOM_LOG_STRING_V2,
  MM_CUSTOM_LOG_STRING_INTEROP_V3,
  MM_CUSTOM_TAGGED_LOG_STRING,
  MM_CUSTOM_TAGGED_LOG_INTEROP,
  MM_CUSTOM_IMAGE
} mm_custom_kind;

typedef struct mm_udt {
  const char* name;
  uint32_t size; /* 0 = variable size: a u32 byte count precedes each body */
  uint8_t is_reference;
  const mm_udt_member* members;
  uint32_t member_count;
  mm_custom_kind custom;
  const mm_ref_slot* refs; /* for size-0 types: offsets inside the body */
  uint32_t ref_count;
} mm_udt;

/* One stream kind: the first *_queue_count entries are the queue's type indices;
 * the rest are helper types looked up by name. */
typedef struct mm_stream_schema {
  const char* tag;
  const mm_udt* const* objects;
  uint32_t objects_queue_count;
  uint32_t objects_count;
  const mm_udt* const* dependencies;
  uint32_t dependencies_queue_count;
  uint32_t dependencies_count;
} mm_stream_schema;

#ifdef __cplusplus
}
#endif
#endif
