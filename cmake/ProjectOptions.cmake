# Shared INTERFACE targets every Custodian target links: warnings and sanitizers.

add_library(custodian_warnings INTERFACE)
target_compile_options(custodian_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
  -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
  $<$<BOOL:${CUSTODIAN_WERROR}>:-Werror>)

add_library(custodian_options INTERFACE)
target_compile_features(custodian_options INTERFACE cxx_std_20)
if(CUSTODIAN_SANITIZE)
  target_compile_options(custodian_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(custodian_options INTERFACE -fsanitize=address,undefined)
endif()
