/* IFS_UNDER_ASAN is defined when AddressSanitizer instruments the build:
 * code that works around the heap (its own allocators, malloc_trim) steps
 * aside, so that the sanitizer sees every allocation. */
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define IFS_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define IFS_UNDER_ASAN 1
#endif
#endif
