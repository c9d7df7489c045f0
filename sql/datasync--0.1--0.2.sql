/* datasync--0.1--0.2.sql -- security and isolation (issue 14)
 *
 * A fresh CREATE EXTENSION installs datasync--0.1.sql and then this file,
 * so a fresh install and an upgraded one are the same by construction;
 * test/t/100_* checks an upgrade of a 0.1 installation that holds data.
 *
 * Sections, one concern each (kept apart so they can change independently):
 *   1. worker trust model
 *   2. databases and incarnations
 *   3. SQL API: calling role, targets, tables
 *   4. leaks to listeners and monitors; audit log
 *   5. batches
 */

\echo Use "ALTER EXTENSION datasync UPDATE TO '0.2'" to load this file. \quit

/* ---------------------------------------------------------------------
 * 1. Worker trust model
 * ---------------------------------------------------------------------
 */

/* END section 1 */



/* ---------------------------------------------------------------------
 * 2. Databases and incarnations
 * ---------------------------------------------------------------------
 */

/* END section 2 */



/* ---------------------------------------------------------------------
 * 3. SQL API: calling role, targets, tables
 * ---------------------------------------------------------------------
 */

/* END section 3 */



/* ---------------------------------------------------------------------
 * 4. Leaks to listeners and monitors; audit log
 * ---------------------------------------------------------------------
 */

/* END section 4 */



/* ---------------------------------------------------------------------
 * 5. Batches
 * ---------------------------------------------------------------------
 */

/* END section 5 */
