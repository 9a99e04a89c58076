// Whether this build runs under AddressSanitizer: GCC's -fsanitize=address defines
// __SANITIZE_ADDRESS__, clang answers __has_feature(address_sanitizer). CSA_ASAN is 1 or 0, the
// one test for the places that must act differently under it (loading the SentencePiece module,
// the apps' exit).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define CSA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CSA_ASAN 1
#endif
#endif
#ifndef CSA_ASAN
#define CSA_ASAN 0
#endif
