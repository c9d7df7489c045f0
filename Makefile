# datasync -- PGXS build
#
#   make && make install          build and install into the server found by pg_config
#   make installcheck             pg_regress (own temporary server) and the TAP tests
#
MODULE_big = datasync
EXTENSION = datasync
OBJS = $(patsubst %.c,%.o,$(wildcard src/*.c src/api/*.c src/worker/*.c src/target/*.c src/monitor/*.c))
# The install script of the current version (default_version of the control
# file) is built from sql/parts/*.sql, in the order of their names; the
# scripts of released versions and the upgrade scripts are files of sql/.
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" datasync.control)
DATA_built = sql/datasync--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/datasync--*.sql))
PGFILEDESC = "datasync - keep a target in sync with tables of this database"

PG_CPPFLAGS = -I$(libpq_srcdir) -Isrc
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK = -lmicrohttpd

# pg_regress: test/sql/*.sql against test/expected/*.out, in one database
# (results/ and regression.diffs land here): setup first (the helpers every
# test uses), then the others in the order of their names
REGRESS = setup $(filter-out setup,$(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql))))
REGRESS_OPTS = --inputdir=test --temp-config=test/regress.conf --temp-instance=tmp_regress --load-extension=datasync

TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

EXTRA_CLEAN = tmp_check tmp_regress results regression.diffs regression.out log

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(DATA_built): $(sort $(wildcard sql/parts/*.sql)) datasync.control
	cat $(filter sql/parts/%,$^) > $@

# PGXS resets PROVE_FLAGS: set it after the include
PROVE_FLAGS = -I ./test/perl

# Warnings are errors in CI (make WERROR=1)
ifdef WERROR
override CFLAGS += -Werror
endif
override CFLAGS += -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
