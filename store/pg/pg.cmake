# The PostgreSQL backend's part of the build, included by the top level.
# With ESR_WITH_POSTGRES off the library still has esr_pg_store_open and
# friends: pg_none.c answers ESR_ENOTSUP, so hosts link either way.
# docs/architecture.md has the map.
option(ESR_WITH_POSTGRES "Build the PostgreSQL store (needs libpq)" ON)
if(ESR_WITH_POSTGRES)
  pkg_check_modules(PQ REQUIRED IMPORTED_TARGET libpq)
  set(ESR_PC_LIBS "-lck -lpq -lpthread")
  list(APPEND ESR_SOURCES
    store/pg/pg.c
    store/pg/pg_all.c
    store/pg/pg_conn.c
    store/pg/pg_listen.c
    store/pg/pg_options.c
    store/pg/pg_snapshot.c
    store/pg/pg_sql.c
    store/pg/pg_writer.c)
else()
  list(APPEND ESR_SOURCES store/pg/pg_none.c store/pg/pg_options.c)
endif()
