# Shared INTERFACE targets every Custodian target links: warnings and sanitizers.

add_library(custodian_warnings INTERFACE)
target_compile_options(custodian_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${CUSTODIAN_WERROR}>:-Werror>)

add_library(custodian_options INTERFACE)
target_compile_features(custodian_options INTERFACE cxx_std_20)
if(CUSTODIAN_SANITIZE)
  target_compile_options(custodian_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(custodian_options INTERFACE -fsanitize=address,undefined)
endif()
if(CUSTODIAN_FUZZ)
  # Coverage instrumentation (without libFuzzer's main) and sanitizers for every library, so the
  # fuzz targets see and check the code they drive, not only their own file.
  target_compile_options(custodian_options INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(custodian_options INTERFACE -fsanitize=address,undefined)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # Boost 1.74 enables co_await for clang only with <experimental/coroutine>, which libstdc++ 12
  # lacks; clang 14 handles libstdc++'s <coroutine>, so tell Asio to use it (gateway/http/server.cpp).
  target_compile_definitions(custodian_options INTERFACE BOOST_ASIO_HAS_CO_AWAIT=1 BOOST_ASIO_HAS_STD_COROUTINE=1)
endif()
