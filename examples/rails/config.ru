# A small Rails 6.1 site that keeps its own sessions on the server, attached to
# edge-session (attach mode): the worker learns each session from the lookup endpoint
# (app/controllers/edge_session_lookups_controller.rb), and the site trusts the identity
# the worker signs (X-Session-Assertion, verified with the jwt gem).
#
#   RAILS_ENV=production SECRET_KEY_BASE=... EDGE_LOOKUP_TOKEN=... EDGE_SITE=https://www.example.com \
#   SESSION_DIR=/var/lib/edgesite/sessions rackup -o 127.0.0.1 -p 3000
#
# EDGE_SITE is the site as browsers address it (the assertion's audience);
# EDGE_JWKS_URL defaults to $EDGE_SITE/.edge-session/jwks.json. No Gemfile: Debian's
# ruby-rails and ruby-jwt packages are enough (scripts/setup.sh installs them).
require "rails"
require "action_controller/railtie"
require "jwt"
require "net/http"

class EdgeSite < Rails::Application
  config.load_defaults 6.1
  config.eager_load = true
  config.secret_key_base = ENV.fetch("SECRET_KEY_BASE")
  config.logger = ActiveSupport::Logger.new($stdout)
  config.log_level = :warn

  # Server-side sessions, so that the site can end one by itself. Debian does not package
  # activerecord-session_store, so this uses the store Rails itself ships: the cache store,
  # here over a FileStore (every server process on this host sees every session; with
  # several hosts, give it a shared cache such as :redis_cache_store instead). Sessions
  # idle for 30 minutes expire in the cache. The cookie holds the public session ID; the
  # cache key is the private one ("2::" + its SHA-256).
  config.session_store :cache_store,
                       key: "_edgesite_session", # the worker's SESSION_COOKIE
                       cache: ActiveSupport::Cache::FileStore.new(ENV.fetch("SESSION_DIR")),
                       expire_after: 30.minutes,
                       same_site: :lax,
                       secure: ENV["COOKIE_SECURE"] == "1"
end

# The worker's public keys, fetched once and again (at most every 30 s) when an assertion
# names a key we do not have yet (a key rotation).
module EdgeJwks
  SITE = ENV.fetch("EDGE_SITE")
  URL = URI(ENV["EDGE_JWKS_URL"] || "#{SITE}/.edge-session/jwks.json")
  LOCK = Mutex.new
  class Unavailable < StandardError; end # answered 503: nobody is signed out for it

  def self.call(options) # the jwt gem calls it again with kid_not_found: true for an unknown kid
    LOCK.synchronize do
      @set = nil if options[:kid_not_found] && @fetched_at.to_i < Time.now.to_i - 30
      @set ||= begin
        @fetched_at = Time.now.to_i
        res = Net::HTTP.start(URL.host, URL.port, use_ssl: URL.scheme == "https", open_timeout: 5, read_timeout: 5) { |http| http.get(URL.request_uri) }
        raise Unavailable, "HTTP #{res.code}" unless res.is_a?(Net::HTTPSuccess)
        JSON.parse(res.body, symbolize_names: true)
      rescue SystemCallError, IOError, SocketError, Timeout::Error, JSON::ParserError => e
        raise Unavailable, e.message
      end
    end
  end
end

EdgeSite.initialize!

EdgeSite.routes.draw do
  # the lookup edge-session asks (LOOKUP_URL=/edge-session/lookup)
  post "/edge-session/lookup", to: "edge_session_lookups#create"

  root "site#home"
  get "/login", to: "site#login_form"
  post "/login", to: "site#login"
  post "/logout", to: "site#logout"
  get "/account", to: "site#account"
  get "/api/whoami", to: "site#whoami"
  get "/api/me", to: "api#me"
  post "/account/sign-out-other-devices", to: "site#sign_out_other_devices"
end

run EdgeSite
