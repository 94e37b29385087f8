/* SPDX-License-Identifier: MIT
 *
 * The floor for one native call from JavaScript: a plain Node-API function
 * taking three u32 arguments and returning a u32 (what a receive burst
 * needs), its native state reached through the function's data pointer, so
 * no `this` to unwrap. bench/callcost.js compares afxdp's calls with it.
 * Built by bench/run.js when node_api.h is installed (Debian: libnode-dev).
 */
#include <node_api.h>
#include <stdint.h>

static uint32_t state[4];

static napi_value burst(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3];
	void *data;
	uint32_t a = 0, b = 0, c = 0;
	napi_value r;
	napi_get_cb_info(env, info, &argc, argv, NULL, &data);
	napi_get_value_uint32(env, argv[0], &a);
	napi_get_value_uint32(env, argv[1], &b);
	napi_get_value_uint32(env, argv[2], &c);
	((uint32_t *)data)[a & 3] += b + c;
	napi_create_uint32(env, 0, &r);
	return r;
}

static napi_value init(napi_env env, napi_value exports)
{
	napi_value fn;
	napi_create_function(env, "burst", NAPI_AUTO_LENGTH, burst, state, &fn);
	napi_set_named_property(env, exports, "burst", fn);
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
