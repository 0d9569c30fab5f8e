# kgain_add_plugin(NAME [TORCH] [SOURCES] source...): one plugin library, built the way the core
# expects. The same function builds the bundled plugins (included by the top-level
# CMakeLists.txt) and plugins out of tree (installed beside kgainConfig.cmake, so
# find_package(kgain) brings it): the CMakeLists.txt of a bundled plugin that needs only the SDK
# works unchanged outside.
#   - a MODULE library kgain_NAME.so (target kgain_plugin_NAME) that links kgain::sdk: the SDK
#     headers with LibTorch's headers and flags (the C++ library ABI must match the core's);
#   - TORCH: also links LibTorch's libraries (kgain::torch), for plugins that run tensor code;
#   - written to KGAIN_PLUGIN_BUILD_DIR (default: <build>/plugins, where kgain finds the bundled
#     ones without configuration) and installed to KGAIN_PLUGIN_INSTALL_DIR (lib/kgain/plugins).
function(kgain_add_plugin name)
  cmake_parse_arguments(ARG "TORCH" "" "SOURCES" ${ARGN})
  set(target kgain_plugin_${name})
  add_library(${target} MODULE ${ARG_SOURCES} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE kgain::sdk)
  if(ARG_TORCH)
    target_link_libraries(${target} PRIVATE kgain::torch)
    if(COMMAND kgain_use_torch_pch)  # in kgain's own tree: the shared precompiled header
      kgain_use_torch_pch(${target})
    endif()
  endif()
  # Every symbol resolved at link time: a plugin that uses LibTorch without TORCH, or a function
  # nobody defines, fails to build instead of being refused at load ("undefined symbol"). Not
  # with a sanitizer asked for in CMAKE_CXX_FLAGS: clang links its runtime into the executable.
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux" AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
    target_link_options(${target} PRIVATE "LINKER:--no-undefined")
  endif()
  set(build_dir "${KGAIN_PLUGIN_BUILD_DIR}")
  if(NOT build_dir)
    set(build_dir "${CMAKE_BINARY_DIR}/plugins")
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" OUTPUT_NAME "kgain_${name}" LIBRARY_OUTPUT_DIRECTORY "${build_dir}")
  install(TARGETS ${target} LIBRARY DESTINATION "${KGAIN_PLUGIN_INSTALL_DIR}")
endfunction()
