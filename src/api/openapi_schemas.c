/*
 * openapi_schemas.c — the component schemas of the OpenAPI document that do not come from
 * the registry: the objects the routes answer with, written from the code that builds them
 * (core/task.c gp_task_to_json and gp_task_snapshot, identity/accounts.c and the api/ surfaces). Data only;
 * JSON with single quotes (openapi.c turns ' into "), so no apostrophes in the text.
 *
 * Error (its code enum from core/errors.h), TaskErrorCode (genpulse/task_errors.h) and the
 * create bodies (the registry) are built in openapi.c.
 */
#include "api/openapi.h"

#define NSTR "{'type':['string','null']}"
#define NTIME "{'type':['string','null'],'format':'date-time'}"
#define TIME "{'type':'string','format':'date-time'}"
#define PAGE(item)                                                                                 \
    "{'type':'object','required':['data','next_cursor'],'properties':{'data':{'type':'array',"     \
    "'items':{'$ref':'#/components/schemas/" item "'}},'next_cursor':{'type':['string','null'],"   \
    "'description':'Pass as cursor for the next page; null on the last one.'}}}"
#define CURSOR_PAGE(item)                                                                          \
    "{'type':'object','required':['next','previous','results'],'properties':{'next':{'type':["     \
    "'string','null'],'format':'uri'},'previous':{'type':['string','null'],'format':'uri'},"       \
    "'results':{'type':'array','items':{'$ref':'#/components/schemas/" item "'}}}}"

const gp_doc_schema_t gp_doc_schemas[] = {
    {"ErrorDetail",
     "{'type':'object','required':['field','message'],'properties':{'field':{'type':'string',"
     "'description':'The field at fault (body.x, params.x, headers.X, a query name), or empty.'},"
     "'message':{'type':'string'}}}"},
    {"Problem",
     "{'type':'object','description':'RFC 7807 problem details, as Replicate answers errors.',"
     "'required':['title','detail','status'],'properties':{'type':{'type':'string'},'title':{"
     "'type':'string','examples':['Unauthenticated']},'detail':{'type':'string','examples':["
     "'You did not pass a valid authentication token']},'status':{'type':'integer','minimum':"
     "400,'maximum':599},'code':{'type':'string','description':'The GenPulse error code.'},"
     "'invalid_fields':{'type':'array','items':{'type':'object','properties':{'type':{'type':"
     "'string','enum':['required','invalid']},'field':{'type':'string'},'description':{'type':"
     "'string'}}}}}}"},
    {"TaskStatus",
     "{'type':'string','enum':['pending','processing','succeeded','failed','canceled']}"},
    {"TaskError",
     "{'type':['object','null'],'description':'Why the task failed (null unless it failed or was "
     "canceled).','required':['code','message'],'properties':{'code':{'$ref':'#/components/"
     "schemas/TaskErrorCode'},'message':{'type':'string'}}}"},
    {"OutputAsset",
     "{'type':'object','required':['name','url','content_type','bytes'],'properties':{'name':{"
     "'type':'string'},'url':{'type':'string','format':'uri','description':'A fresh link (signed "
     "or presigned) minted when the task is read.'},'content_type':{'type':'string'},'bytes':{"
     "'type':'integer','minimum':0},'width':{'type':'integer'},'height':{'type':'integer'},"
     "'duration':{'type':'number','description':'Seconds (video and audio).'},'blurhash':{'type':"
     "'string'},'thumbnail_url':{'type':'string','format':'uri'}}}"},
    {"TaskResultObject",
     "{'type':['object','null'],'description':'What the task produced: assets, plus fields the "
     "provider sets.','properties':{'assets':{'type':'array','items':{'$ref':'#/components/"
     "schemas/OutputAsset'}},'blurhash':{'type':'string'}}}"},
    {"Task",
     "{'type':'object','required':['id','task_type','provider','status','progress','step','params',"
     "'result','error','attempts','max_retries','priority','cancel_requested','request_id',"
     "'created_at','started_at','completed_at','worker_id','urls'],'properties':{"
     "'id':{'type':'string','format':'uuid'},'task_type':{'type':'string'},'provider':{'type':"
     "'string'},'status':{'$ref':'#/components/schemas/TaskStatus'},'progress':{'type':'integer',"
     "'minimum':0,'maximum':100},'step':{'type':['string','null'],'description':'The provider’s "
     "current step; preview when preview_url is set.'},'preview_url':{'type':'string','format':"
     "'uri','description':'A first frame published before the task ends.'},'params':{'type':"
     "'object','description':'The params with defaults filled in and provider named.'},"
     "'result':{'$ref':'#/components/schemas/TaskResultObject'},'error':{'$ref':'#/components/"
     "schemas/TaskError'},'attempts':{'type':'integer','minimum':0},'max_retries':{'type':"
     "'integer','minimum':0,'maximum':100},'priority':{'type':'integer','minimum':0,'maximum':9},"
     "'cancel_requested':{'type':'boolean'},'request_id':" NSTR ",'created_at':" NTIME
     ",'started_at':" NTIME ",'completed_at':" NTIME ",'worker_id':" NSTR
     ",'webhook':{'type':'string','format':'uri'},'webhook_events_filter':{'type':'array','items':"
     "{'$ref':'#/components/schemas/WebhookEvent'}},'urls':{'type':'object','required':['get',"
     "'cancel','events'],'properties':{'get':{'type':'string','format':'uri'},'cancel':{'type':"
     "'string','format':'uri'},'events':{'type':'string','format':'uri'}}}}}"},
    {"TaskList", PAGE("Task")},
    {"TaskResult",
     "{'type':'object','required':['id','status','result','error'],'properties':{'id':{'type':"
     "'string','format':'uuid'},'status':{'type':'string','enum':['succeeded','failed',"
     "'canceled']},'result':{'$ref':'#/components/schemas/TaskResultObject'},'error':{'$ref':"
     "'#/components/schemas/TaskError'}}}"},
    {"TaskEvent",
     "{'type':'object','description':'The data of an SSE status or progress event: a full "
     "snapshot of the task.','required':['id','status','progress','step','result','error',"
     "'attempts'],'properties':{'id':{'type':'string','format':'uuid'},'status':{'$ref':'#/"
     "components/schemas/TaskStatus'},'progress':{'type':'integer','minimum':0,'maximum':100},"
     "'step':" NSTR ",'preview_url':{'type':'string','format':'uri'},'result':{'$ref':'#/"
     "components/schemas/TaskResultObject'},'error':{'$ref':'#/components/schemas/TaskError'},"
     "'attempts':{'type':'integer','minimum':0}}}"},
    {"WebhookEvent",
     "{'type':'string','enum':['start','output','logs','completed'],'description':'Replicate’s "
     "event names: start (the task started), output (new output), logs (new progress text), "
     "completed (it ended).'}"},
    {"Attempt",
     "{'type':'object','required':['attempt','worker_id','started_at','completed_at','status',"
     "'error'],'properties':{'attempt':{'type':'integer','minimum':1},'worker_id':" NSTR
     ",'started_at':" NTIME ",'completed_at':" NTIME ",'duration_s':{'type':['number','null']},"
     "'status':{'type':'string'},'error':{'type':['object','null'],'properties':{'code':{'type':"
     "'string'},'message':{'type':'string'}}}}}"},
    {"AttemptList",
     "{'type':'object','required':['data'],'properties':{'data':{'type':'array','items':{'$ref':"
     "'#/components/schemas/Attempt'}}}}"},
    {"Price",
     "{'type':'object','required':['unit','credits'],'properties':{'unit':{'type':'string','enum':"
     "['free','task','megapixel','second']},'credits':{'type':'integer','minimum':0,'description':"
     "'Credits per unit.'},'per_param':{'type':'string','description':'The param counted in "
     "seconds.'},'times_param':{'type':'string','description':'The param that multiplies (e.g. "
     "num_outputs).'}}}"},
    {"TaskTypeList",
     "{'type':'object','required':['data'],'properties':{'data':{'type':'array','items':{'type':"
     "'object','required':['name','description','providers','default_provider'],'properties':{"
     "'name':{'type':'string'},'description':{'type':'string'},'default_provider':" NSTR
     ",'providers':{'type':'array','items':{'type':'object','required':['name','description',"
     "'params_schema','price'],'properties':{'name':{'type':'string'},'description':{'type':"
     "'string'},'params_schema':{'type':'object','description':'JSON Schema (draft 2020-12) of "
     "params.'},'price':{'$ref':'#/components/schemas/Price'}}}}}}}}}"},
    {"ProviderSetting",
     "{'type':'object','description':'A setting the provider reads. Its value is never shown.',"
     "'required':['name','kind','description','flag','env','secret','configured','has_default'],"
     "'properties':{'name':{'type':'string'},'kind':{'type':'string','enum':['string','secret',"
     "'url','integer','boolean','duration_ms','number']},'description':{'type':'string'},'flag':"
     "{'type':'string','examples':['--replicate-api-token']},'env':{'type':'string','examples':["
     "'GENPULSE_REPLICATE_API_TOKEN']},'secret':{'type':'boolean'},'configured':{'type':"
     "'boolean','description':'Whether it has a value (given or by default).'},'has_default':{"
     "'type':'boolean'},'minimum':{'type':'number'},'maximum':{'type':'number'}}}"},
    {"Provider",
     "{'type':'object','required':['name','description','task_types','price','settings',"
     "'limits'],'properties':{'name':{'type':'string'},'description':{'type':'string'},"
     "'task_types':{'type':'array','items':{'type':'object','required':['name','description',"
     "'default','params_schema'],'properties':{'name':{'type':'string'},'description':{'type':"
     "'string'},'default':{'type':'boolean','description':'This provider is the task type’s "
     "default.'},'params_schema':{'type':'object','description':'JSON Schema (draft 2020-12) of "
     "params: bounds, enums, defaults, examples.'}}}},'price':{'$ref':'#/components/schemas/"
     "Price'},'settings':{'type':'array','items':{'$ref':'#/components/schemas/ProviderSetting'}},"
     "'limits':{'type':'object','properties':{'concurrency':{'type':'integer','description':"
     "'Tasks at once across all workers; 0 = any.'},'requests_per_minute':{'type':'integer',"
     "'description':'Provider requests per minute; 0 = any.'},'timeouts_ms':{'type':'object',"
     "'additionalProperties':{'type':'integer'}},'max_string_length':{'type':'integer'}}}}}"},
    {"ProviderList",
     "{'type':'object','required':['data'],'properties':{'data':{'type':'array','items':{'$ref':"
     "'#/components/schemas/Provider'}}}}"},
    {"Asset",
     "{'type':'object','required':['id','name','url','content_type','bytes'],'properties':{'id':"
     "{'type':'string','format':'uuid'},'name':{'type':'string'},'url':{'type':'string','format':"
     "'uri'},'content_type':{'type':'string'},'bytes':{'type':'integer','minimum':0},"
     "'created_at':{'type':'integer','description':'Unix time in milliseconds (unlike the "
     "RFC 3339 times elsewhere).'},'width':{'type':'integer'},'height':{'type':'integer'},"
     "'blurhash':{"
     "'type':'string'}}}"},
    {"User",
     "{'type':'object','required':['id','email','display_name','plan','created_at','disabled',"
     "'credits'],'properties':{'id':{'type':'string'},'email':" NSTR ",'display_name':" NSTR
     ",'plan':{'type':'string'},'created_at':" NTIME ",'disabled':{'type':'boolean'},'credits':{"
     "'type':'object','properties':{'available':{'type':'integer'},'reserved':{'type':"
     "'integer'}}},'oidc':{'type':'object','properties':{'issuer':{'type':'string'},'subject':{"
     "'type':'string'}}}}}"},
    {"UserPage", PAGE("User")},
    {"ApiKey",
     "{'type':'object','required':['id','user_id','name','prefix','scopes','created_at',"
     "'last_used_at','expires_at','revoked_at'],'properties':{'id':{'type':'string'},'user_id':{"
     "'type':'string'},'name':" NSTR ",'prefix':{'type':'string','description':'The first "
     "characters of the key, to recognise it.'},'scopes':{'type':'array','items':{'type':"
     "'string'}},'created_at':" NTIME ",'last_used_at':" NTIME ",'expires_at':" NTIME
     ",'revoked_at':" NTIME "}}"},
    {"ApiKeyCreated",
     "{'allOf':[{'$ref':'#/components/schemas/ApiKey'},{'type':'object','required':['key'],"
     "'properties':{'key':{'type':'string','pattern':'^gp_','description':'The secret: shown "
     "once.'}}}]}"},
    {"ApiKeyPage", PAGE("ApiKey")},
    {"Account",
     "{'type':'object','required':['user','plan','scopes','authenticated_by','key_id','balance',"
     "'limits'],'properties':{'user':{'$ref':'#/components/schemas/User'},'plan':{'type':"
     "'string'},'scopes':{'type':'array','items':{'type':'string'}},'authenticated_by':{'type':"
     "'string','enum':['local','api_key','oidc','session']},'key_id':" NSTR ",'balance':{'type':"
     "['object','null'],'properties':{'available':{'type':'integer'},'reserved':{'type':"
     "'integer'}}},'limits':{'type':'object','properties':{'charged':{'type':'boolean'},"
     "'monthly_grant':{'type':'integer'},'priority_boost':{'type':'integer'},"
     "'requests_per_minute':{'type':'integer'}}},'csrf_token':{'type':'string','description':"
     "'With a session cookie only: send it as X-CSRF-Token on writes.'}}}"},
    {"LedgerEntry",
     "{'type':'object','required':['seq','kind','task_id','amount','balance_after','note',"
     "'created_at'],'properties':{'seq':{'type':'integer'},'kind':{'type':'string'},'task_id':" NSTR
     ",'amount':{'type':'integer'},'balance_after':{'type':'integer'},'note':" NSTR
     ",'created_at':" TIME "}}"},
    {"LedgerPage", PAGE("LedgerEntry")},
    {"CreditGrant",
     "{'type':'object','required':['user_id','balance','replayed'],'properties':{'user_id':{"
     "'type':'string'},'balance':{'type':'integer'},'replayed':{'type':'boolean'}}}"},
    {"Worker",
     "{'type':'object','required':['id','host','pid','version','concurrency','busy','queues',"
     "'started_at','last_heartbeat_at','heartbeat_age_s','status','running'],'properties':{'id':"
     "{'type':'string'},'host':{'type':'string'},'pid':{'type':'integer'},'version':{'type':"
     "'string'},'concurrency':{'type':'integer'},'busy':{'type':'integer'},'queues':{'type':"
     "'array','items':{'type':'string'}},'started_at':" NTIME ",'last_heartbeat_at':" NTIME
     ",'heartbeat_age_s':{'type':'number'},'status':{'type':'string','enum':['alive','lost']},"
     "'running':{'type':'array','items':{'type':'string','format':'uuid'}}}}"},
    {"WorkerList",
     "{'type':'object','required':['data'],'properties':{'data':{'type':'array','items':{'$ref':"
     "'#/components/schemas/Worker'}}}}"},
    {"Stats",
     "{'type':'object','required':['window','bucket','since','now','all_users','buckets'],"
     "'properties':{'window':{'type':'integer'},'bucket':{'type':'integer'},'since':" TIME
     ",'now':" TIME ",'all_users':{'type':'boolean'},'buckets':{'type':'array','items':{'type':"
     "'object','properties':{'t':" TIME ",'created':{'type':'integer'},'succeeded':{'type':"
     "'integer'},'failed':{'type':'integer'},'canceled':{'type':'integer'},'started':{'type':"
     "'integer'},'pending':{'type':'integer'},'processing':{'type':'integer'},'wait_p50_s':{"
     "'type':'number'},'wait_avg_s':{'type':'number'}}}}}}"},
    {"Health",
     "{'type':'object','required':['status','version','uptime_s'],'properties':{'status':{'type':"
     "'string','const':'ok'},'version':{'type':'string'},'uptime_s':{'type':'integer'},"
     "'workers':{'type':'object','properties':{'concurrency':{'type':'integer'},'busy':{'type':"
     "'integer'}}}}}"},
    {"Ready",
     "{'type':'object','required':['status','checks'],'properties':{'status':{'type':'string',"
     "'enum':['ready','not_ready']},'checks':{'type':'array','items':{'type':'object','required':"
     "['name','status'],'properties':{'name':{'type':'string'},'status':{'type':'string','enum':["
     "'ok','fail']},'duration_ms':{'type':'number'},'error':{'type':'string'}}}}}}"},
    /* webhooks (src/api/webhooks.c) */
    {"WebhookType",
     "{'type':'string','enum':['task.started','task.output','task.logs','task.succeeded',"
     "'task.failed','task.canceled']}"},
    {"WebhookEndpoint",
     "{'type':'object','required':['id','owner','url','event_types','description','disabled',"
     "'disabled_reason','created_at','updated_at'],'properties':{'id':{'type':'string',"
     "'examples':['ep_01a2']},'owner':{'type':'string'},'url':{'type':'string','format':'uri'},"
     "'event_types':{'type':'array','items':{'$ref':'#/components/schemas/WebhookType'}},"
     "'description':" NSTR ",'disabled':{'type':'boolean'},'disabled_reason':{'type':['string',"
     "'null'],'description':'Why it is disabled: by request, or 410 Gone from the endpoint.'},"
     "'created_at':" NTIME ",'updated_at':" NTIME "}}"},
    {"WebhookEndpointCreate",
     "{'type':'object','required':['url'],'additionalProperties':false,'properties':{'url':{"
     "'type':'string','format':'uri','maxLength':2048,'pattern':'^https?://'},'event_types':{"
     "'type':'array','minItems':1,'uniqueItems':true,'items':{'$ref':'#/components/schemas/"
     "WebhookType'},'description':'Default: all.'},'description':{'type':'string','maxLength':"
     "512},'disabled':{'type':'boolean','default':false}}}"},
    {"WebhookEndpointUpdate",
     "{'type':'object','additionalProperties':false,'properties':{'url':{'type':'string',"
     "'format':'uri','maxLength':2048,'pattern':'^https?://'},'event_types':{'type':'array',"
     "'minItems':1,'uniqueItems':true,'items':{'$ref':'#/components/schemas/WebhookType'}},"
     "'description':{'type':['string','null'],'maxLength':512,'description':'null clears it.'},"
     "'disabled':{'type':'boolean','description':'false re-enables it.'}}}"},
    {"WebhookEndpointCreated",
     "{'allOf':[{'$ref':'#/components/schemas/WebhookEndpoint'},{'type':'object','required':["
     "'secret'],'properties':{'secret':{'type':'string','pattern':'^whsec_'}}}]}"},
    {"WebhookEndpointList",
     "{'type':'object','required':['data'],'properties':{'data':{'type':'array','items':{'$ref':"
     "'#/components/schemas/WebhookEndpoint'}}}}"},
    {"WebhookSecret",
     "{'type':'object','required':['key'],'properties':{'key':{'type':'string','pattern':"
     "'^whsec_','description':'Standard Webhooks secret: whsec_ then base64.'}}}"},
    {"WebhookAttempt",
     "{'type':'object','required':['attempt','started_at','duration_ms','status_code','error',"
     "'response'],'properties':{'attempt':{'type':'integer','minimum':1},'started_at':" NTIME
     ",'duration_ms':{'type':'integer'},'status_code':{'type':['integer','null']},'error':" NSTR
     ",'response':{'type':['string','null'],'description':'The first 1 KiB of the answer.'}}}"},
    {"WebhookDelivery",
     "{'type':'object','required':['id','owner','endpoint_id','task_id','event_type','url',"
     "'status','attempts','next_attempt_at','last_status_code','last_error','created_at',"
     "'completed_at'],'properties':{'id':{'type':'string','description':'Also its webhook-id "
     "header, the same on every attempt.'},'owner':{'type':'string'},'endpoint_id':{'type':["
     "'string','null'],'description':'null for a task’s own webhook.'},'task_id':{'type':"
     "'string'},'event_type':{'type':'string'},'url':{'type':'string'},'status':{'type':"
     "'string','enum':['pending','succeeded','failed']},'attempts':{'type':'integer','minimum':"
     "0},'next_attempt_at':" NTIME ",'last_status_code':{'type':['integer','null']},"
     "'last_error':" NSTR ",'created_at':" NTIME ",'completed_at':" NTIME
     ",'payload':{'description':'The body sent (GET of one delivery, once rendered).'},"
     "'attempt_list':{'type':'array','description':'GET of one delivery only.','items':{'$ref':"
     "'#/components/schemas/WebhookAttempt'}}}}"},
    {"WebhookDeliveryPage", PAGE("WebhookDelivery")},
    /* Replicate */
    {"PredictionStatus",
     "{'type':'string','enum':['starting','processing','succeeded','failed','canceled']}"},
    {"Prediction",
     "{'type':'object','description':'Field for field as Replicate’s prediction response.',"
     "'required':['id','model','version','input','output','data_removed','error','status',"
     "'created_at','urls'],'properties':{'id':{'type':'string'},'model':{'type':'string'},"
     "'version':{'type':'string'},'input':{'type':'object'},'output':{'description':'The "
     "outputs: file outputs as URLs.'},'logs':{'type':['string','null']},'error':" NSTR
     ",'status':{'$ref':'#/components/schemas/PredictionStatus'},'data_removed':{'type':"
     "'boolean'},'source':{'type':'string','enum':['web','api']},'created_at':" TIME
     ",'started_at':" NTIME ",'completed_at':" NTIME ",'urls':{'type':'object','required':["
     "'get','cancel'],'properties':{'get':{'type':'string','format':'uri'},'cancel':{'type':"
     "'string','format':'uri'},'stream':{'type':'string','format':'uri'},'web':{'type':'string',"
     "'format':'uri'}}},'metrics':{'type':'object','properties':{'predict_time':{'type':"
     "'number'},'total_time':{'type':'number'}}},'webhook':{'type':'string','format':'uri'},"
     "'webhook_events_filter':{'type':'array','items':{'$ref':'#/components/schemas/"
     "WebhookEvent'}}}}"},
    {"PredictionPage", CURSOR_PAGE("Prediction")},
    {"PredictionRequest",
     "{'type':'object','required':['version','input'],'additionalProperties':false,'properties':"
     "{'version':{'type':'string','description':'owner/name, owner/name:version or a version id."
     "'},'input':{'type':'object','description':'The model’s input: the params of its task "
     "type and provider.'},'webhook':{'type':'string','format':'uri','maxLength':2048},"
     "'webhook_events_filter':{'type':'array','items':{'$ref':'#/components/schemas/"
     "WebhookEvent'}},'stream':{'type':'boolean','deprecated':true}}}"},
    {"ModelPredictionRequest",
     "{'type':'object','required':['input'],'additionalProperties':false,'properties':{'input':{"
     "'type':'object'},'webhook':{'type':'string','format':'uri','maxLength':2048},"
     "'webhook_events_filter':{'type':'array','items':{'$ref':'#/components/schemas/"
     "WebhookEvent'}},'stream':{'type':'boolean','deprecated':true}}}"},
    {"ModelVersion",
     "{'type':'object','required':['id','created_at','openapi_schema'],'properties':{'id':{"
     "'type':'string'},'created_at':" TIME ",'cog_version':" NSTR ",'openapi_schema':{'type':"
     "'object','description':'components.schemas.Input is the version’s input schema.'}}}"},
    {"ModelVersionPage", CURSOR_PAGE("ModelVersion")},
    {"Model",
     "{'type':'object','required':['url','owner','name','description','visibility',"
     "'latest_version'],'properties':{'url':{'type':'string','format':'uri'},'owner':{'type':"
     "'string'},'name':{'type':'string'},'description':" NSTR ",'visibility':{'type':'string',"
     "'enum':['public','private']},'github_url':" NSTR ",'paper_url':" NSTR ",'license_url':" NSTR
     ",'run_count':{'type':'integer'},'cover_image_url':" NSTR ",'default_example':{"
     "'type':['object','null']},'latest_version':{'oneOf':[{'$ref':'#/components/schemas/"
     "ModelVersion'},{'type':'null'}]}}}"},
    {"ModelPage", CURSOR_PAGE("Model")},
    {NULL, NULL},
};
