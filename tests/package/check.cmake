# Installs the build tree into a scratch prefix, then builds and runs a
# consumer through find_package(esr) (shared and static) and pkg-config.
# Run with -DBUILD_DIR= -DSOURCE_DIR= -DWORK_DIR= -DCC= -DCFLAGS= -DEXPECT_STRESS=
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# Every installed header compiles on its own, and the umbrella includes each.
file(GLOB headers RELATIVE ${prefix}/include ${prefix}/include/esr/*.h)
list(LENGTH headers nheaders)
if(nheaders LESS 12)
  message(FATAL_ERROR "installed headers: expected at least 12, got: ${headers}")
endif()
file(READ ${prefix}/include/esr/esr.h umbrella)
separate_arguments(hcflags UNIX_COMMAND "${CFLAGS}")
foreach(h ${headers})
  file(WRITE ${WORK_DIR}/header.c "#include <${h}>\n")
  run(${CC} ${hcflags} -std=c11 -Wall -Wextra -Werror -I${prefix}/include
      -fsyntax-only ${WORK_DIR}/header.c)
  if(NOT h STREQUAL "esr/esr.h" AND NOT umbrella MATCHES "#include \"${h}\"")
    message(FATAL_ERROR "esr/esr.h does not include ${h}")
  endif()
endforeach()

if(EXPECT_STRESS) # installed with the library, and runs from there
  run(${prefix}/bin/esr-stress --help)
endif()

run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/package -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${CC} "-DCMAKE_C_FLAGS=${CFLAGS}")
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/consumer_shared)
run(${WORK_DIR}/consumer/consumer_static)

file(GLOB pcdir ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
get_filename_component(libdir ${pcdir} DIRECTORY)
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pcdir} pkg-config --cflags --libs esr)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
separate_arguments(cflags UNIX_COMMAND "${CFLAGS}")
run(${CC} ${cflags} -std=c11 ${SOURCE_DIR}/tests/package/consumer.c -o ${WORK_DIR}/consumer_pc ${flags})
run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${WORK_DIR}/consumer_pc)

# The public headers need nothing but the include directory: no defines or
# include paths of esr's own dependencies reach a host.
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pcdir} pkg-config --cflags esr esr-static)
string(STRIP "${last_output}" cflags_only)
if(NOT cflags_only MATCHES "^-I[^ ]*/include$")
  message(FATAL_ERROR "pkg-config --cflags esr: expected one -I, got: ${cflags_only}")
endif()

# Static through esr-static: the program runs without libesr.so anywhere on
# its library path, so it holds esr itself.
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pcdir} pkg-config --cflags --libs esr-static)
string(STRIP "${last_output}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${CC} ${cflags} -std=c11 ${SOURCE_DIR}/tests/package/consumer.c -o ${WORK_DIR}/consumer_pc_static ${flags})
run(${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${WORK_DIR}/consumer_pc_static)
message(STATUS "installed package works through find_package and pkg-config")
